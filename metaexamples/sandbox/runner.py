"""What runs on the sandbox side: the worker, its template, the per-program harness and supervisor.

Standard library only. Run as a script (`python -s -S -B runner.py worker|fresh CONFIG`) it is a
sandbox worker or a one-shot program process; imported by the host, it supplies `supervise`,
`STATUSES` and the bounds on what comes back.

Processes. The worker talks to the host and supervises; right after start-up, before reading any
program, it forks the template, which forks every program's process (fresh pipes each time, whose
other ends it passes to the worker over a unix socket) and reaps it when the worker says so. The
template never reads a program, an argument, a result or a program's output: each program starts
from that clean state. A program's process reads its own program from fd 4 before it locks down.

Protocol. Host -> worker and worker -> host: frames of a 4-byte big-endian length and UTF-8 JSON,
over the worker's stdin/stdout (both moved off fds 0/1 at start, so nothing printed by accident
can corrupt them). Program process -> supervisor: fd 3 carries b"R" when the program is about to
start (the wall clock starts there) and then one JSON list [status, detail, value, seconds]; fds 1, 2
carry whatever the program prints, counted and discarded. fd 3 is the program's own fd: a program
can write a forged result there, but only for itself, which it could do anyway by returning that
value; what it writes is decoded with bounded depth and size, so the worst it gets is its own
runtime_error. Verdicts the supervisor decides (timeout, output_limit, signals) cannot be forged.
"""

from __future__ import annotations

import builtins
import errno
import fcntl
import gc
import itertools
import json
import os
import re
import select
import signal
import socket
import struct
import sys
import time

if __package__:
    from . import lockdown
else:  # run as a script inside the sandbox
    import lockdown

STATUSES = ("ok", "syntax_error", "runtime_error", "timeout", "memory", "output_limit", "forbidden")

RESULT_FD = 3
EXIT_SETUP_FAILED = 121
STARTUP_GRACE_S = 30.0  # from fork/spawn to the program's first instruction, on a loaded machine
MAX_DETAIL = 300  # characters of Outcome.detail
MAX_VALUE_DEPTH = 100  # nesting of lists and dicts in a returned value: deeper ones are output_limit
PROGRAM_DIR = "program"  # the program's directory, under the worker's temporary root

# Modules solvers commonly use, imported once by the worker so that forked programs find them
# loaded. Others (decimal, fractions, dataclasses ...) are imported by the program at its own cost:
# every page the worker holds makes each fork a little dearer.
PREIMPORT = ("bisect", "collections", "copy", "functools", "heapq", "itertools", "math", "operator",
             "random", "re", "string", "typing")


# ------------------------------------------------------------------------------------ the program


def lock_config() -> dict:
    """What the program's process may read, and which kernel restrictions this machine offers."""
    read = {sys.base_prefix, sys.base_exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
            "/usr", "/lib", "/lib64", "/lib32", "/libx32", "/etc/ld.so.cache"}
    return {
        "landlock_abi": lockdown.landlock_abi(),
        "seccomp": lockdown.seccomp_supported(),
        "read_paths": sorted(p for p in read if p and os.path.exists(p)),
        "device_paths": ["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"],
    }


def restrictions(limits: dict, lock: dict, workdir: str, drop_caps: bool = True) -> lockdown.Restrictions:
    """Prepared once per worker (or fresh process), applied in each program's process."""
    return lockdown.Restrictions(lock, workdir, int(limits["memory_mb"]), cpu_seconds(limits),
                                 int(limits["max_output_bytes"]), drop_caps)


def cpu_seconds(limits: dict) -> int:
    return int(limits["timeout_s"]) + 1  # RLIMIT_CPU is whole seconds: a backstop to the wall clock


def one_line(text: str, _len=len) -> str:
    """A detail as it may be stored: one line, at most MAX_DETAIL characters, encodable as UTF-8
    (a lone surrogate, which a program can put in any message, becomes its backslash escape)."""
    text = " ".join(text[: 4 * MAX_DETAIL].split()).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if _len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}.__getitem__


def json_depth(text: str) -> int:
    """How deep lists and dicts nest in a JSON text, counted without recursion (brackets inside
    strings ignored): checked before decoding, so that no value can exhaust the decoder's stack."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(itertools.accumulate(map(_BRACKET_STEP, brackets)), default=0)


def program_streams() -> tuple:
    """stdout, stderr, stdin objects on fds 1, 2, 0: made once by the worker (never written there),
    they write to whatever those fds are in each forked program."""
    return (open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False),
            open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False),
            open(0, "r", encoding="utf-8", closefd=False))


def execute(payload: dict, limits: dict, restrict: lockdown.Restrictions, vm_bytes: int | None = None,
            streams: tuple | None = None) -> None:
    """Lock down, run the program, report on fd 3 and _exit. Never returns."""
    # References taken now: the program may monkeypatch builtins, json, os or sys afterwards.
    _write, _exit, _dumps, _repr, _str, _type = os.write, os._exit, json.dumps, repr, str, type
    _isinstance, _len, _callable, _memerr, _oserr = isinstance, len, callable, MemoryError, OSError
    _clock, _round, _depth = time.perf_counter, round, json_depth
    out, err, inp = streams or program_streams()
    sys.stdout, sys.stderr, sys.stdin = out, err, inp
    max_value = int(limits["max_output_bytes"])

    def describe(exc: BaseException) -> str:
        try:
            return one_line(f"{_type(exc).__name__}: {_str(exc)}")
        except BaseException:
            return one_line(f"{_type(exc).__name__}: <unprintable>")

    def classify(exc: BaseException) -> str:
        if _isinstance(exc, _memerr):
            return "memory"
        if _isinstance(exc, _oserr):
            if exc.errno in (errno.EPERM, errno.EACCES, errno.EROFS):
                return "forbidden"
            if exc.errno in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT):
                return "output_limit"
        return "runtime_error"

    def finish(status: str, detail: str, value_json: str = "null") -> None:
        for stream in (out, err):
            try:
                stream.flush()
            except BaseException:
                pass
        seconds = _round(_clock() - t0, 6)
        data = ("[" + _dumps(status) + "," + _dumps(detail) + "," + value_json + "," + _dumps(seconds) + "]").encode()
        while data:
            data = data[_write(RESULT_FD, data):]
        _exit(0)

    os.environ.clear()
    restrict.apply(vm_bytes)
    os.closerange(RESULT_FD + 1, 1 << 20)  # the worker's pipes, and everything else inherited
    import random

    random.seed(0)  # the same stream in every program, whichever worker runs it (fork reseeds it)
    _write(RESULT_FD, b"R")
    t0 = _clock()
    try:
        try:
            code = compile(payload["source"], "<program>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:  # ValueError: NUL bytes in the source
            finish("syntax_error", describe(exc))
        namespace = {"__name__": "__program__", "__builtins__": builtins}
        exec(code, namespace)
        entry = namespace.get(payload["entry"])
        if not _callable(entry):
            finish("runtime_error", f"entry function {payload['entry']!r} is not defined by the program")
        value = entry(*payload["args"])
        try:
            text = _dumps(value, allow_nan=True)
        except (TypeError, ValueError):  # not JSON: report its repr as a string
            text = _dumps(_repr(value))
        except RecursionError:
            finish("output_limit", f"return value nests too deep to encode (the limit is {MAX_VALUE_DEPTH})")
        if _len(text) > max_value:
            finish("output_limit", f"return value encodes to {_len(text)} bytes, over the limit of {max_value}")
        depth = _depth(text)
        if depth > MAX_VALUE_DEPTH:
            finish("output_limit", f"return value nests {depth} deep, over the limit of {MAX_VALUE_DEPTH}")
        finish("ok", "", text)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included: the program did not return
        finish(classify(exc), describe(exc))


# ---------------------------------------------------------------------------------- the supervisor

_SIGNAL_STATUS = {signal.SIGXCPU: "timeout", signal.SIGXFSZ: "output_limit", signal.SIGSYS: "forbidden"}


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _wait4(pid: int) -> tuple[int, float]:
    _, wstatus, usage = os.wait4(pid, 0)
    return wstatus, usage.ru_utime + usage.ru_stime


def _has_exited(pid: int) -> bool:
    """Without pidfds (Linux < 5.3): a zombie, whether or not it is our child."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                return f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
        except OSError:
            return True


def supervise(pid: int, out_r: int, res_r: int, limits: dict, reap=_wait4) -> dict:
    """Watch one program process until it exits or breaks a limit; kill its group; reap it.

    Returns {"status", "detail", "value", "seconds"} and "setup_failed" when the harness itself
    could not start. The process group is killed before the zombie is reaped (`reap(pid)` ->
    (wait status, CPU seconds), by its parent), so its id cannot have been reused by then.
    """
    timeout_s, max_out = float(limits["timeout_s"]), int(limits["max_output_bytes"])
    result_cap = max_out + 4096
    os.set_blocking(out_r, False)
    os.set_blocking(res_r, False)
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    poller = select.poll()
    for fd in (out_r, res_r) + ((pidfd,) if pidfd is not None else ()):
        poller.register(fd, select.POLLIN)
    started = None
    deadline = time.monotonic() + STARTUP_GRACE_S
    out_bytes, res, exited, verdict = 0, bytearray(), False, None

    def pump(fd: int) -> bool:
        """Read what is there; False at EOF."""
        nonlocal out_bytes
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return True
            if not chunk:
                poller.unregister(fd)
                return False
            if fd == out_r:
                out_bytes += len(chunk)
                if out_bytes > max_out:
                    return True
            else:
                res.extend(chunk)
                if len(res) > result_cap:
                    return True

    open_fds = {out_r, res_r}
    while True:
        now = time.monotonic()
        if now >= deadline:
            verdict = (("timeout", f"wall-clock limit of {timeout_s:g} s exceeded") if started is not None
                       else ("runtime_error", "sandbox: the program did not start in time"))
            break
        wait = deadline - now if pidfd is not None else min(deadline - now, 0.05)
        for fd, _ in poller.poll(max(1, int(wait * 1000) + 1)):
            if fd == pidfd:
                exited = True
            elif fd in open_fds and not pump(fd):
                open_fds.discard(fd)
        if started is None and res[:1] == b"R":
            started = time.monotonic()
            deadline = started + timeout_s
        if pidfd is None and not exited:
            exited = _has_exited(pid)
        if exited:
            for fd in list(open_fds):  # what it wrote just before exiting
                pump(fd)
        if out_bytes > max_out:
            verdict = ("output_limit", f"output exceeded {max_out} bytes")
            break
        if len(res) > result_cap:
            verdict = ("output_limit", f"return value exceeded {max_out} bytes")
            break
        if exited:
            break
    end = time.monotonic()
    for kill in (os.killpg, os.kill):  # whole group first: threads, and any process it made
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    wstatus, cpu = reap(pid)
    if pidfd is not None:
        os.close(pidfd)
    seconds = round(end - started, 6) if started is not None else 0.0
    outcome = {"status": "runtime_error", "detail": "", "value": None, "seconds": seconds}
    if verdict is not None:
        outcome["status"], outcome["detail"] = verdict
        return outcome
    frame = bytes(res[1:] if started is not None else res)
    if frame:
        try:  # whatever the program wrote there: it decides at most its own verdict
            text = frame.decode("utf-8")
            if json_depth(text) > MAX_VALUE_DEPTH + 1:
                raise ValueError("too deep")
            status, detail, value, seconds = json.loads(text)
            if status not in STATUSES or not isinstance(detail, str) or not isinstance(seconds, (int, float)):
                raise ValueError(status)
        except Exception:  # ValueError, TypeError, RecursionError, MemoryError ...
            outcome["detail"] = "unreadable result: the program wrote to the sandbox's result channel"
            return outcome
        outcome.update(status=status, detail=one_line(detail), value=value if status == "ok" else None)
        if started is not None:
            if 0.0 <= seconds <= timeout_s + STARTUP_GRACE_S:  # the harness's clock: finer than ours
                outcome["seconds"] = float(seconds)
        if started is None:
            outcome["setup_failed"] = True
        return outcome
    if os.WIFSIGNALED(wstatus):
        signum = os.WTERMSIG(wstatus)
        if signum == signal.SIGKILL and cpu >= cpu_seconds(limits):
            signum = signal.SIGXCPU  # the hard CPU limit, reached by a program that ignored SIGXCPU
        outcome["status"] = _SIGNAL_STATUS.get(signum, "runtime_error")
        outcome["detail"] = f"killed by {_signal_name(signum)}"
        if signum == signal.SIGXCPU:
            outcome["detail"] = f"CPU time limit of {cpu_seconds(limits)} s exceeded"
        return outcome
    code = os.WEXITSTATUS(wstatus)
    outcome["detail"] = f"exited with status {code} before returning"
    if started is None:
        outcome["detail"] = f"sandbox: the program process failed to start (exit status {code})"
        outcome["setup_failed"] = True
    return outcome


# ------------------------------------------------------------------------------------ the worker


def _read_exact(fd: int, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf.extend(chunk)
    return bytes(buf)


def read_frame(fd: int) -> object | None:
    head = _read_exact(fd, 4)
    if head is None:
        return None
    body = _read_exact(fd, struct.unpack(">I", head)[0])
    return None if body is None else json.loads(body)


def encode_frame(obj: object) -> bytes:
    body = json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_frame(fd: int, obj: object) -> None:
    write_all(fd, encode_frame(obj))


def _report_setup_failure(exc: BaseException) -> None:
    try:
        detail = one_line(f"sandbox setup failed: {type(exc).__name__}: {exc}")
        os.write(RESULT_FD, json.dumps(["runtime_error", detail, None, 0.0]).encode())
    except BaseException:
        pass


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_dir(name: str, dir_fd: int | None) -> int:
    """Open a directory after making it ours to list and empty again (a program may have made it
    0o300, 0o000 ...: the worker has no capability to ignore that, but owns what programs made)."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:  # not readable
        os.chmod(name, 0o700, dir_fd=dir_fd)
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    if os.fstat(fd).st_mode & 0o700 != 0o700:  # readable, but its entries could not be removed
        os.fchmod(fd, 0o700)
    return fd


def empty_dir(root: str, keep: str = "") -> bool:
    """Delete everything below `root` but `keep` (a name in root); True when that left it empty.

    Never raises and never recurses: a walk down and up with one open directory at a time and
    names relative to it, so neither the depth of a tree nor the length of its paths matters."""
    try:
        fd = _open_dir(root, None)
    except OSError:
        return False
    names: list[str] = []  # the way down from root to fd
    try:
        while True:
            child = None
            with os.scandir(fd) as entries:
                for entry in entries:
                    if not names and entry.name == keep:
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        child = entry.name
                        break
                    os.unlink(entry.name, dir_fd=fd)
            if child is not None:
                below = _open_dir(child, fd)
                os.close(fd)
                fd = below
                names.append(child)
            elif names:
                above = os.open("..", _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = above
                os.rmdir(names.pop(), dir_fd=fd)
            else:
                return True
    except Exception:  # OSError; or anything else: never take the worker or close() down
        return False
    finally:
        os.close(fd)


def remove_tree(path: str) -> bool:
    """shutil.rmtree without its recursion and its trust in permissions; never raises."""
    if not empty_dir(path):
        return False
    try:
        os.rmdir(path)
        return True
    except OSError:
        return False


def _reap_orphans() -> None:
    """Without seccomp a program can fork: kill what reparented to us (we are a subreaper)."""
    me = os.getpid()
    for _ in range(1000):
        children = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open(f"/proc/{name}/stat", "rb") as f:
                        fields = f.read().rsplit(b")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == me:
                    children.append(int(name))
        if not children:
            return
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for child in children:
            try:
                os.waitpid(child, 0)
            except ChildProcessError:
                pass


PAYLOAD_FD = 4  # in a program's process, until the harness has read its program from it
_REAPED = struct.Struct("=id")  # template -> worker: the program's wait status and CPU seconds
_READY = struct.Struct("=i")  # template -> worker: the next program's pid, with its pipes' other ends


def _program_process(fds: dict, parent: int, workdir: str, limits: dict, restrict: lockdown.Restrictions,
                     vm_bytes: int, streams: tuple) -> None:
    """In the forked program process: its fds in place, its program read, then execute. Never returns."""
    try:
        high = {target: fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 16) for target, fd in fds.items()}
        for target, fd in high.items():  # via high numbers: a source may sit where a target goes
            os.dup2(fd, target)
        os.setsid()
        lockdown.prctl(lockdown.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(EXIT_SETUP_FAILED)
        payload = read_frame(PAYLOAD_FD)  # closed with every fd above RESULT_FD before the program runs
        if payload is not None:
            os.chdir(workdir)  # now: the worker may have made it anew while this process waited
            execute(payload, limits, restrict, vm_bytes, streams)
    except BaseException as exc:
        _report_setup_failure(exc)
    finally:
        os._exit(EXIT_SETUP_FAILED)


def template_main(control: socket.socket, limits: dict, lock: dict, restrict: lockdown.Restrictions,
                  workdir: str, streams: tuple) -> None:
    """The process every program is forked from. It never reads a program, an argument, a result
    or anything a program printed: each program's process starts from this state, never from
    memory that held another program's data. It forks each program's process ahead, with fresh
    pipes whose other ends go to the worker (_READY); the process waits for its program there. On
    b"W" from the worker (which has killed the program's group) it reaps it and answers (_REAPED)."""
    lockdown.prctl(lockdown.PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with its worker
    lockdown.prctl(lockdown.PR_SET_CHILD_SUBREAPER, 1)  # what a program forks (without seccomp) is ours
    me, sock = os.getpid(), control.fileno()
    while True:
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        res_r, res_w = os.pipe2(os.O_CLOEXEC)
        pay_r, pay_w = os.pipe2(os.O_CLOEXEC)
        # Its own /dev/null: a lock or flag the program sets on this open file dies with the program.
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        vm_bytes = lockdown.vm_size_bytes()
        pid = os.fork()
        if pid == 0:
            _program_process({0: devnull, 1: out_w, 2: out_w, RESULT_FD: res_w, PAYLOAD_FD: pay_r}, me, workdir,
                             limits, restrict, vm_bytes, streams)
        for fd in (out_w, res_w, pay_r, devnull):
            os.close(fd)
        socket.send_fds(control, [_READY.pack(pid)], [out_r, res_r, pay_w])
        for fd in (out_r, res_r, pay_w):
            os.close(fd)
        if os.read(sock, 1) != b"W":
            os._exit(0)  # the worker is gone
        wstatus, cpu = _wait4(pid)
        if not lock["seccomp"]:
            _reap_orphans()
        os.write(sock, _REAPED.pack(wstatus, cpu))


class TemplateLink:
    """The worker's end of the template: the program process it forked ahead, and reaping it."""

    def __init__(self, control: socket.socket):
        self.control = control

    def next_process(self) -> tuple[int, list[int]]:
        """(pid, [out_r, res_r, pay_w]) of the process waiting for the next program."""
        message, fds, _, _ = socket.recv_fds(self.control, 16, 3)
        if len(fds) != 3 or len(message) != _READY.size:
            for fd in fds:
                os.close(fd)
            raise RuntimeError("sandbox: the template process is gone")
        return _READY.unpack(message)[0], fds

    def reap(self, _pid: int) -> tuple[int, float]:
        self.control.sendall(b"W")
        answer = self.control.recv(_REAPED.size)
        if len(answer) != _REAPED.size:
            raise RuntimeError("sandbox: the template process is gone")
        return _REAPED.unpack(answer)


def run_program(frame: bytes, template: TemplateLink, limits: dict, lock: dict, workdir: str) -> dict:
    """One program (its frame as the host sent it, undecoded) in the process the template forked
    for it, supervised here.

    The directory is emptied before each program (the previous one's files, however deep or
    locked) rather than after: a program that cannot have a clean directory is not run."""
    clean = empty_dir(workdir)
    if not lock["landlock_abi"]:  # it could write next to its directory too
        clean = empty_dir(os.path.dirname(workdir), keep=os.path.basename(workdir)) and clean
    if not os.path.isdir(workdir):  # removed by a program running without Landlock
        os.mkdir(workdir, 0o700)
        clean = empty_dir(workdir)
    if not clean:
        return {"status": "runtime_error", "value": None, "seconds": 0.0, "setup_failed": True,
                "detail": "sandbox: could not empty the program directory; the program was not run"}
    pid, (out_r, res_r, pay_w) = template.next_process()
    try:
        try:
            write_all(pay_w, frame)  # the program's process reads it at once, whatever its size
        except BrokenPipeError:
            pass  # it died before reading: supervise says how
        finally:
            os.close(pay_w)
        return supervise(pid, out_r, res_r, limits, template.reap)
    finally:
        os.close(out_r)
        os.close(res_r)


def read_raw_frame(fd: int) -> bytes | None:
    head = _read_exact(fd, 4)
    if head is None:
        return None
    body = _read_exact(fd, struct.unpack(">I", head)[0])
    return None if body is None else head + body


def worker_main(config: dict) -> None:
    """Talks to the host and supervises programs; forks them only through the template it starts
    before reading any program, so it can hold programs' data without passing it on."""
    limits, tmp_root = config["limits"], config["tmp_root"]
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    lockdown.prctl(lockdown.PR_SET_DUMPABLE, 0)
    lockdown.prctl(lockdown.PR_SET_CHILD_SUBREAPER, 1)
    lockdown.drop_capabilities()  # the worker needs none; its programs then inherit none
    for name in PREIMPORT:
        try:
            __import__(name)
        except ImportError:
            pass
    lock = lock_config()
    for feature in config.get("disable", ()):  # tests of the degraded modes
        lock[{"landlock": "landlock_abi"}.get(feature, feature)] = 0
    workdir = os.path.join(tmp_root, PROGRAM_DIR)
    os.makedirs(workdir, mode=0o700, exist_ok=True)
    restrict = restrictions(limits, lock, workdir, drop_caps=False)
    streams = program_streams()
    control, template_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    gc.freeze()  # forked programs then do not touch (and copy) the template's objects when collecting
    if os.fork() == 0:
        control.close()
        os.close(proto_in)
        os.close(proto_out)
        try:
            template_main(template_end, limits, lock, restrict, workdir, streams)
        finally:
            os._exit(1)
    template_end.close()
    template = TemplateLink(control)
    write_frame(proto_out, {"ok": True, "features": {k: lock[k] for k in ("landlock_abi", "seccomp")}})
    while True:
        frame = read_raw_frame(proto_in)
        if frame is None:
            return  # the host closed the pipe, or died
        write_frame(proto_out, run_program(frame, template, limits, lock, workdir))


def fresh_main(config: dict) -> None:
    """One program in this fresh interpreter: the benchmark's baseline, same harness and limits."""
    payload = json.loads(sys.stdin.buffer.read())
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    try:
        if config["result_fd"] != RESULT_FD:
            os.dup2(config["result_fd"], RESULT_FD)
        lockdown.prctl(lockdown.PR_SET_PDEATHSIG, signal.SIGKILL)
        limits = config["limits"]
        execute(payload, limits, restrictions(limits, lock_config(), os.getcwd()))
    except BaseException as exc:
        _report_setup_failure(exc)
    finally:
        os._exit(EXIT_SETUP_FAILED)


if __name__ == "__main__":
    sys.path[:] = [p for p in sys.path[1:] if p]  # programs import the standard library only
    mode, config = sys.argv[1], json.loads(sys.argv[2])
    worker_main(config) if mode == "worker" else fresh_main(config)

"""One program can neither decide another's verdict nor pass it anything (issue #21, sections 1-2).

Each attack runs on both backends (bubblewrap skipped with its reason where it does not work) in a
one-worker sandbox, so the program that looks for residue runs in the same worker right after the
one that left it. Docs: docs/reference/sandbox.md (its guarantee table cites these tests).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import secrets
import subprocess
import textwrap

import pytest

from metaexamples.errors import ConfigError
from metaexamples.io import write_jsonl
from metaexamples.sandbox import Program, Sandbox
from metaexamples.sandbox import lockdown, runner

TIMEOUT = 2.0
BACKENDS = ["bubblewrap", "process"]


def P(source: str, *args) -> Program:
    return Program(textwrap.dedent(source), "solve", tuple(args))


def open_sandbox(backend: str, timeout_s: float = TIMEOUT, disable: tuple = ()) -> Sandbox:
    try:
        return Sandbox(backend=backend, timeout_s=timeout_s, workers=1, _disable=disable)
    except ConfigError as exc:  # bubblewrap cannot work on this machine: nothing of it to test
        pytest.skip(f"backend {backend} unavailable: {exc}")


@pytest.fixture(scope="module", params=BACKENDS)
def box(request):
    sandbox = open_sandbox(request.param)
    yield sandbox
    sandbox.close()


def statuses(outcomes) -> list[tuple]:
    return [(o.status, o.value) for o in outcomes]


LIST_DIR = P("import os\ndef solve():\n    return sorted(os.listdir('.'))")
DOUBLE = P("def solve(x):\n    return 2 * x", 21)

# ------------------------------------------------------------------ 1. a result decides nothing else

DEEP_RETURN = P("""
    def solve(n):
        v = 0
        for _ in range(n):
            v = [v]
        return v
    """, 990)
FORGED_DEEP = P("""
    import os
    def solve(n):
        os.write(3, ('["ok", "", ' + '[' * n + ']' * n + ', 0.0]').encode())
        os._exit(0)
    """, 990)
FORGED_HUGE_INT = P("import os\ndef solve():\n    os.write(3, b'[\"ok\", \"\", ' + b'9' * 5000 + b', 0.0]')\n"
                    "    os._exit(0)")


def test_deep_or_forged_results_are_each_programs_own_verdict(box):
    at_bound = P("def solve(n):\n    v = 0\n    for _ in range(n):\n        v = [v]\n    return v",
                 runner.MAX_VALUE_DEPTH)
    over = P("def solve(n):\n    v = {}\n    for _ in range(n):\n        v = {'k': v}\n    return v",
             runner.MAX_VALUE_DEPTH + 1)
    outcomes = box.run([DOUBLE, DEEP_RETURN, FORGED_DEEP, FORGED_HUGE_INT, at_bound, over, DOUBLE])
    got = [o.status for o in outcomes]
    assert got == ["ok", "output_limit", "runtime_error", "runtime_error", "ok", "output_limit", "ok"], outcomes
    assert outcomes[0].value == outcomes[6].value == 42
    assert f"limit of {runner.MAX_VALUE_DEPTH}" in outcomes[1].detail
    assert "unreadable result" in outcomes[2].detail and "unreadable result" in outcomes[3].detail
    assert runner.json_depth(json.dumps(outcomes[4].value)) == runner.MAX_VALUE_DEPTH


def test_procedural_batch_with_a_deep_program_keeps_the_other_verdicts():
    """The task's verifier over a batch (what task=procedural task.answer=program runs): the deep
    program gets its verdict; the others keep theirs."""
    from types import SimpleNamespace

    from metaexamples.tasks.procedural.verifier import verify_texts

    tcfg = SimpleNamespace(answer="program", sandbox="auto", timeout_s=TIMEOUT, memory_mb=256,
                           max_output_bytes=65536, workers=1)
    hidden = [{"input": f"{a} + {b}", "answer": str(a + b)} for a, b in ((1, 1), (4, 4), (7, 2), (3, 9), (6, 0))]
    rows = [{"kind": "arithmetic", "input": "2 + 3", "answer": "5", "hidden": hidden}] * 4
    texts = ["```python\ndef solve(x):\n    a, b = x.split(' + ')\n    return int(a) + int(b)\n```",
             "```python\ndef solve(x):\n    v = 0\n    for _ in range(990):\n        v = [v]\n    return v\n```",
             "```python\ndef solve(x):\n    return 4\n```",
             "```python\ndef solve(x):\n    return 5\n```"]
    kinds = [v.kind for v in verify_texts(tcfg, rows, texts)]
    assert kinds == ["correct", "output_limit", "wrong_answer", "shown_only"]


def test_details_are_one_bounded_writable_line(box, tmp_path):
    programs = [P("def solve():\n    raise ValueError('\\udc80 lone surrogate')"),
                P("import os\ndef solve():\n    os.write(3, b'[\"runtime_error\", \"\\\\udc80 forged\", null, 0.0]')\n"
                  "    os._exit(0)"),
                P("def solve():\n    raise ValueError('x\\n' * 10000)")]
    outcomes = box.run(programs)
    for o in outcomes:
        assert o.status == "runtime_error", o
        o.detail.encode("utf-8")  # raised UnicodeEncodeError before
        assert "\n" not in o.detail and len(o.detail) <= runner.MAX_DETAIL
    assert "\\udc80" in outcomes[0].detail and "\\udc80" in outcomes[1].detail
    write_jsonl(tmp_path / "completions.jsonl", [{"detail": o.detail} for o in outcomes])


# ----------------------------------------------------------------- 2. nothing left for the next one

DEEP_TREE = P("""
    import os
    def solve(n, name):
        for _ in range(n):
            os.mkdir(name)
            os.chdir(name)
        open('secret', 'w').write('left behind')
        return n
    """, 1500, "d")
LONG_PATH_TREE = P(DEEP_TREE.source, 100, "n" * 200)  # paths of 20 kB: five times PATH_MAX
UNREADABLE_CHAIN = P("""
    import os
    def solve():
        path = '.'
        for name in 'abcde':
            path += '/' + name
            os.mkdir(path, 0o300)
        open(path + '/secret', 'w').write('left behind')
        os.mkdir('flat', 0o000)
        return 'ok'
    """)
READ_CHAIN = P("def solve():\n    return open('a/b/c/d/e/secret').read()")


@pytest.mark.slow  # ~10 s on the process backend: each rmdir on a busy ext4 disk takes milliseconds
@pytest.mark.parametrize("backend", BACKENDS)
def test_deep_and_unreadable_trees_are_removed(backend):
    sandbox = open_sandbox(backend, timeout_s=30.0)  # 1,500 mkdirs on a busy disk
    tmp = list(sandbox._tmp)
    try:
        outcomes = sandbox.run([DEEP_TREE, LIST_DIR, LONG_PATH_TREE, LIST_DIR, UNREADABLE_CHAIN, READ_CHAIN,
                                LIST_DIR, LONG_PATH_TREE])
    finally:
        sandbox.close()  # never raises, whatever the programs left (the last tree is still there)
    assert statuses(outcomes) == [("ok", 1500), ("ok", []), ("ok", 100), ("ok", []), ("ok", "ok"),
                                  ("runtime_error", None), ("ok", []), ("ok", 100)]
    assert "FileNotFoundError" in outcomes[5].detail
    assert all(not os.path.exists(t) for t in tmp)  # the process backend's folder is gone


def test_close_removes_what_a_program_left(tmp_path):
    """close() and the fresh baseline share remove_tree: deep, long-named, unreadable trees."""
    root = tmp_path / "left"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    for _ in range(300):  # 60 kB paths (rmdir is slow on a busy disk: depth itself is tested above)
        os.mkdir("n" * 200, dir_fd=fd)
        below = os.open("n" * 200, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = below
    os.mkdir("locked", 0o300, dir_fd=fd)
    os.close(fd)
    (root / "flat").mkdir(mode=0o000)
    try:
        assert runner.remove_tree(str(root)) is True
        assert not root.exists()
        assert runner.remove_tree(str(root)) is False  # already gone: False, not an exception
    finally:  # never leave pytest's own cleanup a tree it cannot remove (its rmtree recurses)
        subprocess.run(["rm", "-rf", str(root)], check=False)


def test_without_landlock_bubblewrap_still_passes_no_file_on():
    """Landlock off (an older kernel): under bubblewrap only /tmp is writable, and the worker
    empties it before each program."""
    places = ["/tmp/leak", "/tmp/program/leak", "/dev/shm/leak", "/dev/leak", "/leak", "/opt/leak"]
    writer = P("""
        def solve(places):
            written = []
            for path in places:
                try:
                    open(path, 'w').write('x')
                    written.append(path)
                except OSError:
                    pass
            return written
        """, places)
    reader = P("import os\ndef solve(places):\n    return [p for p in places if os.path.exists(p)]", places)
    with open_sandbox("bubblewrap", disable=("landlock",)) as sandbox:
        assert sandbox.features["landlock_abi"] == 0
        outcomes = sandbox.run([writer, reader])
    assert statuses(outcomes) == [("ok", ["/tmp/leak", "/tmp/program/leak"]), ("ok", [])]


HEAP_SCAN = P("""
    import ctypes, hashlib, os
    def solve(needles):
        # The mapped pages around the brk heap and around one of this program's objects (the
        # allocator's arenas), found page by page: write() of an unmapped page fails (EFAULT), no crash.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.sbrk.restype = ctypes.c_void_p
        libc.write.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
        r, w = os.pipe()
        def mapped(a):
            if libc.write(w, a, 1) == 1:
                os.read(r, 1)
                return True
            return False
        pages = set()
        for start in (libc.sbrk(0) - 4096, id(needles)):
            for step in (-4096, 4096):
                a, gap = start & ~4095, 0
                while gap < 64 and abs(a - start) < (256 << 20):
                    a += step
                    if mapped(a):
                        pages.add(a)
                        gap = 0
                    else:
                        gap += 1
        memory = b''.join(ctypes.string_at(a, 4096) for a in sorted(pages))
        found = []
        for prefix, digest, size in needles:
            i = memory.find(prefix.encode())
            while i >= 0:  # the whole marker never exists in this program: only its prefix and hash
                if hashlib.sha256(memory[i:i + size]).hexdigest() == digest:
                    found.append(prefix)
                    break
                i = memory.find(prefix.encode(), i + 1)
        return [len(memory), found]
    """)


def _marker() -> tuple[str, list]:
    marker = secrets.token_hex(16)
    return marker, [marker[:16], hashlib.sha256(marker.encode()).hexdigest(), len(marker)]


def test_no_program_sees_another_programs_arguments_or_result_in_memory(box):
    """The previous program's arguments and result (many copies: freed allocator blocks keep most of
    their bytes) are nowhere in the next program's heap."""
    for _ in range(2):
        arg, arg_needle = _marker()
        result, result_needle = _marker()
        leaker = P("def solve(args, result):\n    return [len(args), [result] * 300]", [arg] * 300, result)
        outcomes = box.run([leaker, Program(HEAP_SCAN.source, "solve", ([arg_needle, result_needle],))])
        assert outcomes[0].status == "ok"
        scanned, found = outcomes[1].value
        assert scanned > 1 << 20  # the scan did read the heap and arenas
        assert found == []


IPC = P("""
    import ctypes
    def solve(key, calls):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        out = {}
        for name, nr, args in calls:
            ctypes.set_errno(0)
            args = [ctypes.c_char_p(a.encode()) if isinstance(a, str) else ctypes.c_long(a) for a in args]
            r = libc.syscall(ctypes.c_long(nr), *args)
            out[name] = ctypes.get_errno() if r == -1 else 'succeeded'
        return out
    """)


def _ipc_calls(key: int, queue: str) -> list:
    arch = lockdown.seccomp_arch()
    col = 0 if arch == "x86_64" else 1
    nr = {name: pair[col] for name, pair in lockdown._SYSCALLS.items()}
    IPC_CREAT, O_CREAT_RDWR = 0o1000 | 0o600, 0o100 | 0o2
    return [("shmget", nr["shmget"], [key, 4096, IPC_CREAT]), ("msgget", nr["msgget"], [key, IPC_CREAT]),
            ("semget", nr["semget"], [key, 1, IPC_CREAT]), ("msgsnd", nr["msgsnd"], [0, 0, 0, 0]),
            ("mq_open", nr["mq_open"], [queue, O_CREAT_RDWR, 0o600, 0]), ("mq_unlink", nr["mq_unlink"], [queue])]


def _host_ipc_keys() -> set[int]:
    keys = set()
    for kind in ("shm", "msg", "sem"):
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                keys |= {int(line.split()[0]) for line in f.readlines()[1:] if line.strip()}
        except OSError:
            pass
    return keys


def test_sysv_and_posix_ipc_are_denied(box):
    if not box.features["seccomp"]:
        pytest.skip("no seccomp on this kernel: IPC is then shared (see docs/reference/sandbox.md)")
    key = 0x4D450000 + os.getpid() % 0xFFFF
    # A host queue the program must not be able to unlink (mq_unlink reaches the host's namespace on process).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mq_open.restype = ctypes.c_int
    name = f"/metaexamples-test-{os.getpid()}"
    mq = libc.mq_open(name.encode(), 0o100 | 0o2, 0o600, None)
    try:
        [outcome] = box.run([P(IPC.source, key, _ipc_calls(key, name[1:]))])  # the raw call: no leading /
        assert outcome.status == "ok", outcome
        assert outcome.value == {"shmget": errno.EPERM, "msgget": errno.EPERM, "semget": errno.EPERM,
                                 "msgsnd": errno.EPERM, "mq_open": errno.EPERM, "mq_unlink": errno.EPERM}
        if mq >= 0:  # the host's queue is still there
            again = libc.mq_open(name.encode(), 0o2, 0o600, None)
            assert again >= 0
            os.close(again)
        assert key not in _host_ipc_keys()
    finally:
        if mq >= 0:
            os.close(mq)
            libc.mq_unlink(name.encode())


FCNTL = P("""
    import fcntl, os, signal, termios
    def solve():
        me = os.getpid()  # the commands are denied whoever the owner (the attack names another process)
        r, w = os.pipe()
        out = {}
        for name, call in [("F_SETOWN", lambda: fcntl.fcntl(r, fcntl.F_SETOWN, me)),
                           ("F_SETSIG", lambda: fcntl.fcntl(r, 10, signal.SIGKILL)),
                           ("F_SETOWN_EX", lambda: fcntl.fcntl(r, 15, bytes(8))),
                           ("FIOSETOWN", lambda: fcntl.ioctl(r, 0x8901, me.to_bytes(4, 'little'))),
                           ("F_NOTIFY", lambda: fcntl.fcntl(os.open('.', os.O_RDONLY), 1026, 0x80000001)),
                           ("F_SETLK", lambda: fcntl.lockf(os.open('f', os.O_CREAT | os.O_RDWR), fcntl.LOCK_EX)),
                           ("F_OFD_SETLK", lambda: fcntl.fcntl(os.open('g', os.O_CREAT | os.O_RDWR), 37, bytes(32))),
                           ("F_SETLEASE", lambda: fcntl.fcntl(os.open('h', os.O_CREAT | os.O_RDONLY), 1024, 0)),
                           ("flock", lambda: fcntl.flock(0, fcntl.LOCK_EX))]:
            try:
                call()
                out[name] = 'allowed'
            except OSError as exc:
                out[name] = exc.errno
        # What ordinary code needs still works: flags, O_ASYNC alone (no owner: no signal), FIONREAD.
        fcntl.fcntl(r, fcntl.F_SETFL, os.O_NONBLOCK | os.O_ASYNC)
        os.set_blocking(r, True)
        out['ordinary'] = fcntl.ioctl(r, termios.FIONREAD, b'    ') == bytes(4)
        return out
    """)


def test_fcntl_signal_owner_locks_and_watches_are_denied(box):
    if not box.features["seccomp"]:
        pytest.skip("no seccomp on this kernel")
    [outcome] = box.run([FCNTL])
    assert outcome.status == "ok", outcome
    denied = {k: errno.EPERM for k in ("F_SETOWN", "F_SETSIG", "F_SETOWN_EX", "FIOSETOWN", "F_NOTIFY", "F_SETLK",
                                       "F_OFD_SETLK", "F_SETLEASE", "flock")}
    assert outcome.value == dict(denied, ordinary=True)


def test_a_lock_on_dev_null_dies_with_its_program():
    """Without seccomp (flock allowed): each program has its own /dev/null, so a lock ends with it."""
    lock = P("import fcntl\ndef solve():\n    fcntl.flock(0, fcntl.LOCK_EX)\n    return 'locked'")
    probe = P("import fcntl, os\ndef solve():\n    fcntl.flock(os.open('/dev/null', os.O_RDONLY), "
              "fcntl.LOCK_EX | fcntl.LOCK_NB)\n    return 'free'")
    with Sandbox(backend="process", timeout_s=TIMEOUT, workers=1, _disable=("seccomp",)) as sandbox:
        outcomes = sandbox.run([lock, probe])
    assert statuses(outcomes) == [("ok", "locked"), ("ok", "free")]


OUTSIDE = P("""
    import ctypes, os
    def solve(host_dir):
        out = {}
        def attempt(name, call):
            try:
                call()
                out[name] = 'allowed'
            except OSError as exc:
                out[name] = exc.errno
        attempt('readlink', lambda: os.readlink('/proc/1/cwd'))
        attempt('getxattr', lambda: os.getxattr('/usr', 'user.x'))
        attempt('listxattr', lambda: os.listxattr('/usr'))
        attempt('listdir_proc', lambda: os.listdir('/proc'))
        attempt('read_proc_1', lambda: open('/proc/1/cmdline').read())
        libc = ctypes.CDLL(None, use_errno=True)
        ctypes.set_errno(0)
        fd = libc.inotify_init1(0)
        out['inotify'] = ctypes.get_errno() if fd < 0 else 'allowed'
        ctypes.set_errno(0)
        out['fanotify'] = ctypes.get_errno() if libc.fanotify_init(0, 0) < 0 else 'allowed'
        # What cannot be denied on the process backend: the existence and metadata of paths.
        attempt('stat_host_dir', lambda: os.stat(host_dir))
        attempt('stat_pid_1', lambda: os.stat('/proc/1'))
        return out
    """)


def test_reading_outside_the_allowed_paths(box, tmp_path):
    if not (box.features["seccomp"] and box.features["landlock_abi"]):
        pytest.skip("needs seccomp and Landlock")
    [outcome] = box.run([P(OUTSIDE.source, str(tmp_path))])
    assert outcome.status == "ok", outcome
    value = outcome.value
    assert {k: value[k] for k in ("readlink", "getxattr", "listxattr", "listdir_proc", "read_proc_1", "inotify",
                                  "fanotify")} == {
        "readlink": errno.EPERM, "getxattr": errno.ENOTSUP, "listxattr": errno.ENOTSUP,
        "listdir_proc": errno.EACCES, "read_proc_1": errno.EACCES, "inotify": errno.EPERM, "fanotify": errno.EPERM}
    if box.backend_used == "process":  # documented as not deniable there
        assert value["stat_host_dir"] == "allowed" and value["stat_pid_1"] == "allowed"
    else:  # bubblewrap: the host's folders do not exist in the worker's view; /proc is its own
        assert value["stat_host_dir"] == errno.ENOENT

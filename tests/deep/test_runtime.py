"""sonorad.deep._runtime: the device choice and seeded, deterministic torch execution."""

from __future__ import annotations

import torch

from sonorad.deep._runtime import deterministic, resolve_device


def test_resolve_device_defaults_to_cuda_when_present_else_the_cpu():
    assert resolve_device(None) == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_deterministic_block_restores_global_state():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    flag = torch.are_deterministic_algorithms_enabled()
    with deterministic(0) as gen:
        assert torch.are_deterministic_algorithms_enabled()
        torch.rand(5)
        assert isinstance(gen, torch.Generator)
    assert torch.are_deterministic_algorithms_enabled() == flag
    assert torch.equal(torch.rand(3), expected)


def test_the_draws_inside_the_block_depend_on_the_seed_alone():
    def draws(seed):
        with deterministic(seed) as gen:
            return torch.rand(4), torch.randperm(10, generator=gen)

    torch.manual_seed(1)
    first = draws(7)
    torch.manual_seed(2)  # whatever the global state before the block
    again = draws(7)
    other = draws(8)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])

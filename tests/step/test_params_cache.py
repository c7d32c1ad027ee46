"""The per-function work of calling a step is done once, and never serves a stale function."""

from __future__ import annotations

import argparse
import sys
import types

import pytest

from conveyor.step.params import StepInputError, bind_arguments, resolve_callable


def _module(name: str, body: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(body, module.__dict__)
    sys.modules[name] = module
    return module


def test_a_resolved_function_follows_a_patch_and_a_reload() -> None:
    module = _module("conveyor_cache_probe", "def f():\n    return 1\n")
    try:
        assert resolve_callable("conveyor_cache_probe.f")() == 1
        assert resolve_callable("conveyor_cache_probe.f") is module.f  # the cached one
        module.f = lambda: 2  # patched, as a test or a notebook does
        assert resolve_callable("conveyor_cache_probe.f")() == 2
        _module("conveyor_cache_probe", "def f():\n    return 3\n")  # reloaded
        assert resolve_callable("conveyor_cache_probe.f")() == 3
        del sys.modules["conveyor_cache_probe"].f
        with pytest.raises(StepInputError, match="has no 'f'"):
            resolve_callable("conveyor_cache_probe.f")
    finally:
        sys.modules.pop("conveyor_cache_probe", None)


def test_binding_is_worked_out_once_and_still_casts_and_refuses() -> None:
    def f(a: int, b, c: str = "x", **rest):  # type: ignore[no-untyped-def]
        return a

    assert bind_arguments(f, {"a": "3", "b": [1], "z": 9}) == {"a": 3, "b": [1], "z": 9}
    assert bind_arguments(f, {"a": 4, "b": None, "c": "y"}) == {"a": 4, "b": None, "c": "y"}
    with pytest.raises(StepInputError, match="needs parameter 'b'"):
        bind_arguments(f, {"a": 1})
    with pytest.raises(StepInputError, match="cannot be cast"):
        bind_arguments(f, {"a": "not a number", "b": 1})

    def g(args: argparse.Namespace, n: int):  # type: ignore[no-untyped-def]
        return args

    bound = bind_arguments(g, {"n": "2", "m": 5})
    assert bound["n"] == 2 and vars(bound["args"]) == {"m": 5}

    def h(a):  # type: ignore[no-untyped-def]
        return a

    assert bind_arguments(h, {"a": 1, "unused": 2}) == {"a": 1}  # no **kwargs: others left out

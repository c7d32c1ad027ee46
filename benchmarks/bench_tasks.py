"""No-op task functions for the benchmarks (importable by worker processes)."""

from __future__ import annotations


def noop() -> None:
    return None


def items(n: int) -> list[int]:
    return list(range(n))


def touch(item: int) -> int:
    return item


def total(values: list[int]) -> int:
    return sum(values)


def touch_partition(files: list[str]) -> int:
    return len(files)

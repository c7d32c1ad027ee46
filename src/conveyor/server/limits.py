"""What a submission may hold, the same in the API (refused with 413/422 saying which limit)
and in the worker (which checks again before it unpacks anything).

Each limit can be set by the operator through the environment of ``conveyor server start``:

| limit | variable | default |
|---|---|---|
| code bundle, compressed | ``CONVEYOR_MAX_CODE_BYTES`` | 50 MiB |
| code bundle, unpacked | ``CONVEYOR_MAX_CODE_UNPACKED`` | 200 MiB |
| code bundle, files | ``CONVEYOR_MAX_CODE_FILES`` | 10,000 |
| code bundle, path depth | ``CONVEYOR_MAX_CODE_DEPTH`` | 32 |
| parameters, JSON size | ``CONVEYOR_MAX_PARAMETERS_BYTES`` | 10 MiB |
| parameters, nesting | ``CONVEYOR_MAX_PARAMETERS_DEPTH`` | 100 |
| executors users may choose | ``CONVEYOR_SERVER_EXECUTORS`` | ``local`` |
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.step.params import MAX_VALUE_DEPTH, _depth


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class Limits:
    """The operator's limits (see the module docstring)."""

    code_bytes: int = 50 * 1024 * 1024
    code_unpacked: int = 200 * 1024 * 1024
    code_files: int = 10_000
    code_depth: int = 32
    parameters_bytes: int = 10 * 1024 * 1024
    parameters_depth: int = MAX_VALUE_DEPTH
    executors: tuple[str, ...] = ("local",)

    @classmethod
    def from_env(cls) -> Limits:
        """The limits in force: the defaults, overridden by the environment."""
        base = cls()
        allowed = os.environ.get("CONVEYOR_SERVER_EXECUTORS")
        return cls(
            code_bytes=_env_int("CONVEYOR_MAX_CODE_BYTES", base.code_bytes),
            code_unpacked=_env_int("CONVEYOR_MAX_CODE_UNPACKED", base.code_unpacked),
            code_files=_env_int("CONVEYOR_MAX_CODE_FILES", base.code_files),
            code_depth=_env_int("CONVEYOR_MAX_CODE_DEPTH", base.code_depth),
            parameters_bytes=_env_int("CONVEYOR_MAX_PARAMETERS_BYTES", base.parameters_bytes),
            parameters_depth=_env_int("CONVEYOR_MAX_PARAMETERS_DEPTH", base.parameters_depth),
            executors=tuple(e.strip() for e in allowed.split(",") if e.strip())
            if allowed
            else base.executors,
        )


class LimitError(ValueError):
    """A submission over a limit, or a bundle that cannot be unpacked safely; ``status`` is
    the HTTP status the API answers with."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def _over(what: str, found: int, unit: str, limit: int) -> str:
    return f"{what} has {found:,} {unit}, over the limit of {limit:,} {unit}"


def check_parameters(parameters: Any, limits: Limits) -> None:
    """Parameters within the size and nesting limits; LimitError otherwise."""
    if _depth(parameters) > limits.parameters_depth:
        raise LimitError(f"parameters nest deeper than {limits.parameters_depth} levels (the limit)")
    size = len(json.dumps(parameters, default=str))
    if size > limits.parameters_bytes:
        raise LimitError(_over("parameters, as JSON,", size, "bytes", limits.parameters_bytes), 413)


def check_code(code: bytes, limits: Limits) -> list[tarfile.TarInfo]:
    """The bundle's members, each one safe to unpack, all within the limits; LimitError naming
    the first problem otherwise. The worker extracts exactly these, with the same rules."""
    if len(code) > limits.code_bytes:
        raise LimitError(_over("the code bundle", len(code), "bytes", limits.code_bytes), 413)
    try:
        with tarfile.open(fileobj=io.BytesIO(code), mode="r:*") as archive:
            members = archive.getmembers()
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise LimitError(f"the code bundle is not a tar archive: {exc}") from None
    if len(members) > limits.code_files:
        raise LimitError(_over("the code bundle", len(members), "entries", limits.code_files), 413)
    total = 0
    for member in members:
        try:
            tarfile.data_filter(member, "/bundle")  # refuses absolute paths, '..', outside links, devices
        except tarfile.FilterError as exc:
            raise LimitError(f"the code bundle holds an unsafe entry: {exc}") from None
        if len(Path(member.name).parts) > limits.code_depth:
            raise LimitError(f"'{member.name}' is nested deeper than {limits.code_depth} directories")
        total += max(member.size, 0)
        if total > limits.code_unpacked:
            raise LimitError(_over("the code bundle, unpacked,", total, "bytes", limits.code_unpacked), 413)
    return members


def unpack(code: bytes, target: Path, limits: Limits) -> None:
    """Check the bundle (as the API did), then extract it with Python's ``data`` filter."""
    check_code(code, limits)
    with tarfile.open(fileobj=io.BytesIO(code), mode="r:*") as archive:
        archive.extractall(target, filter="data")

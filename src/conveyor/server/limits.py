"""What a submission may hold, the same in the API (refused with 413/422 saying which limit)
and in the worker (which checks again before it unpacks anything).

Each limit can be set by the operator through the environment of ``conveyor server start``:

| limit | variable | default |
|---|---|---|
| code bundle, compressed | ``CONVEYOR_MAX_CODE_BYTES`` | 50 MiB |
| code bundle, unpacked | ``CONVEYOR_MAX_CODE_UNPACKED`` | 200 MiB |
| code bundle, files | ``CONVEYOR_MAX_CODE_FILES`` | 10,000 |
| code bundle, path depth | ``CONVEYOR_MAX_CODE_DEPTH`` | 32 |
| pipeline and config, each | (fixed) | 8 MiB, the size ``conveyor execute`` reads |
| parameters, JSON size | ``CONVEYOR_MAX_PARAMETERS_BYTES`` | 10 MiB |
| parameters, nesting | ``CONVEYOR_MAX_PARAMETERS_DEPTH`` | 100 |
| executors users may choose | ``CONVEYOR_SERVER_EXECUTORS`` | ``local`` |

Code bundles are checked member by member before anything is unpacked. Python's own
``data`` extraction filter is used where it exists (3.11.4 and later); on 3.11.0-3.11.3,
which ``requires-python`` admits, the same rules are applied here instead (no absolute
paths, no ``..``, links that stay inside, no devices or FIFOs) and the bundle is extracted
by :func:`unpack` itself, with no owners and no set-id bits.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from conveyor.spec.yamlload import DEFAULT_MAX_BYTES
from conveyor.step.params import MAX_VALUE_DEPTH, _depth

#: The largest pipeline (and config) the server takes: the size ``conveyor execute``, which a
#: worker runs, reads a pipeline file with. One number, so the API never accepts what the
#: worker will refuse.
PIPELINE_MAX_BYTES = DEFAULT_MAX_BYTES
#: Python's ``data`` extraction filter (3.11.4+, 3.12+); None where this Python lacks it.
DATA_FILTER = getattr(tarfile, "data_filter", None)


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
    pipeline_bytes: int = PIPELINE_MAX_BYTES
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


def check_pipeline(text: str, limits: Limits, what: str = "the pipeline") -> None:
    """A pipeline's (or config's) YAML text within the size a worker reads; LimitError (413)
    otherwise. The API calls it on each submission; a worker calls it again before it writes
    the run's files, so both refuse exactly the same texts."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.pipeline_bytes:
        raise LimitError(_over(what, size, "bytes", limits.pipeline_bytes), 413)


def _unsafe(member: tarfile.TarInfo) -> str | None:
    """Why ``member`` may not be unpacked, by the rules of Python's ``data`` filter (used
    where that filter is missing): None when it is safe."""
    name = PurePosixPath(member.name)
    if member.name.startswith(("/", "\\")) or name.is_absolute():
        return f"'{member.name}' is an absolute path"
    if ".." in name.parts:
        return f"'{member.name}' holds '..'"
    if member.issym() or member.islnk():
        link = PurePosixPath(member.linkname)
        if not member.linkname or member.linkname.startswith("/") or link.is_absolute() or ".." in link.parts:
            # Without '..' and absolute targets, every chain of links stays inside the bundle.
            return f"'{member.name}' links outside the bundle ('{member.linkname}')"
        return None
    if not (member.isreg() or member.isdir()):
        return f"'{member.name}' is a device, FIFO or other special file"
    return None


def _refusal(member: tarfile.TarInfo) -> str | None:
    """Why ``member`` is unsafe: Python's data filter where it exists, our own rules else."""
    if DATA_FILTER is None:
        return _unsafe(member)
    try:
        DATA_FILTER(member, "/bundle")  # absolute paths, '..', outside links, devices
    except tarfile.TarError as exc:  # FilterError's base; FilterError exists where the filter does
        return str(exc)
    return None


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
        refused = _refusal(member)
        if refused is not None:
            raise LimitError(f"the code bundle holds an unsafe entry: {refused}")
        if len(Path(member.name).parts) > limits.code_depth:
            raise LimitError(f"'{member.name}' is nested deeper than {limits.code_depth} directories")
        total += max(member.size, 0)
        if total > limits.code_unpacked:
            raise LimitError(_over("the code bundle, unpacked,", total, "bytes", limits.code_unpacked), 413)
    return members


def unpack(code: bytes, target: Path, limits: Limits) -> None:
    """Check the bundle (as the API did), then extract it with Python's ``data`` filter, or,
    where this Python has none, with :func:`_extract` (checked members only)."""
    members = check_code(code, limits)
    with tarfile.open(fileobj=io.BytesIO(code), mode="r:*") as archive:
        if DATA_FILTER is not None:
            archive.extractall(target, filter="data")
        else:
            _extract(archive, members, target)


def _extract(archive: tarfile.TarFile, members: list[tarfile.TarInfo], target: Path) -> None:
    """Extract members :func:`_unsafe` passed, as the data filter would: no owners, no set-id
    or sticky bits, files readable by their owner. Links are made after files and folders, so
    no member is written through a link the bundle made."""
    try:
        _extract_members(archive, members, target)
    except OSError as exc:  # e.g. a link over a folder the bundle also holds
        raise LimitError(f"the code bundle cannot be unpacked: {exc.strerror}: {exc.filename}") from None


def _extract_members(archive: tarfile.TarFile, members: list[tarfile.TarInfo], target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    links = []
    for member in members:
        path = target / member.name
        if member.isdir():
            path.mkdir(parents=True, exist_ok=True)
        elif member.isreg():
            path.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None  # a regular member always has data
            with source, open(path, "wb") as out:
                while chunk := source.read(1 << 20):
                    out.write(chunk)
            path.chmod(0o755 if member.mode & stat.S_IXUSR else 0o644)
        else:
            links.append(member)
    for member in links:
        path = target / member.name
        path.parent.mkdir(parents=True, exist_ok=True)
        if member.issym():
            path.symlink_to(member.linkname)
        else:
            os.link(target / member.linkname, path, follow_symlinks=False)


def check_bundles() -> str:
    """A start-up check that this Python refuses unsafe bundles and accepts a plain one:
    which rules are in force ("Python's data filter" or "conveyor's own"); LimitError if
    the check does not hold."""
    plain, escape = (_bundle(name) for name in ("pkg/mod.py", "../escape.py"))
    check_code(plain, Limits())
    try:
        check_code(escape, Limits())
    except LimitError:
        return "Python's data filter" if DATA_FILTER is not None else "conveyor's own checks"
    raise LimitError("code bundles cannot be checked on this Python: a '../' member was accepted")


def _bundle(name: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(name)
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    return buffer.getvalue()

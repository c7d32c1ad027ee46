"""Loading pipelines, run configs and parameter files, with located errors."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from conveyor.jsontypes import JSONObject, JSONValue
from conveyor.spec.compat import translate
from conveyor.spec.config import RunConfig
from conveyor.spec.errors import Issue, SpecError, describe, sort_issues
from conveyor.spec.models import Pipeline
from conveyor.spec.validate import build_model, check_pipeline
from conveyor.spec.yamlload import DEFAULT_MAX_BYTES, Located, load_yaml_file, load_yaml_text, parse_yaml_text

PARAMS_MAX_BYTES = 256 * 1024 * 1024
ENV_PREFIX = "CONVEYOR_PRM_"
#: runnable's prefix, read too (so its scripts and harnesses work unchanged); conveyor's wins.
RUNNABLE_ENV_PREFIX = "RUNNABLE_PRM_"


@dataclass(frozen=True)
class LoadedPipeline:
    """A validated pipeline, the file it came from, and its content hash."""

    pipeline: Pipeline
    file: str | None
    name: str

    @property
    def data(self) -> JSONObject:
        """The pipeline as JSON, defaults left out (what a run's record keeps)."""
        return self.pipeline.model_dump(mode="json", exclude_defaults=True)

    @property
    def hash(self) -> str:
        return pipeline_hash(self.pipeline)


def pipeline_hash(pipeline: Pipeline) -> str:
    """A content hash of the pipeline's meaning (not of its YAML spelling)."""
    text = json.dumps(pipeline.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def pipeline_from_located(located: Located, name: str) -> LoadedPipeline:
    """A pipeline from YAML already loaded with line numbers; SpecError with every problem.

    Top-level keys beside ``dag`` whose value carries an anchor (``branch: &branch ...``)
    are definitions reused by alias inside the dag, as runnable's examples write them: they
    are set aside. Any other unknown top-level key is an error.
    """
    if isinstance(located.data, dict) and located.anchored - {"dag"}:
        kept = {k: v for k, v in located.data.items() if k == "dag" or k not in located.anchored}
        located = replace(located, data=kept)
    graph_issues = check_pipeline(located)
    try:
        pipeline = build_model(Pipeline, located, "invalid pipeline", strict=False)
    except SpecError as exc:
        exc.issues = sort_issues(exc.issues + graph_issues)
        raise
    if located.issues or graph_issues:
        raise SpecError(sort_issues(located.issues + graph_issues), "invalid pipeline")
    return LoadedPipeline(pipeline=pipeline, file=located.file, name=name)


def is_stream(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a pipe (``<(...)``, ``/dev/stdin`` fed by a pipe, a FIFO): read
    once, as it comes, never stat'ed for its size nor read again."""
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _refused(name: str, message: str, expected: str, found: str, hint: str | None = None) -> SpecError:
    return SpecError([Issue(message, file=name, expected=expected, found=found, hint=hint)], "refused file")


def read_stream(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """A pipe's text, read once; the size limit applies while reading (a pipe has no size).

    It is opened without waiting for a writer: a pipe with no writer and nothing in it (a
    named pipe nobody writes to, which would otherwise be waited on forever) is refused."""
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK)
        try:
            try:
                chunks = [os.read(fd, 65536)]
            except BlockingIOError:  # a writer is there, with nothing written yet: wait for it
                chunks = [b""]
            else:
                if not chunks[0]:
                    raise _refused(
                        name,
                        "not a regular file",
                        expected="a YAML file, or a pipe its writer is already writing to",
                        found="a pipe with no writer and nothing in it",
                        hint="use /dev/null for no content",
                    )
            os.set_blocking(fd, True)
            size = len(chunks[0])
            while size <= max_bytes:
                chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
        if size > max_bytes:
            raise _refused(
                name,
                "the stream is too large",
                expected=f"at most {max_bytes:,} bytes",
                found=f"more than {max_bytes:,} bytes",
                hint="keep large data out of YAML: point to it through the catalog",
            )
        return b"".join(chunks).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Issue(f"cannot read the stream: {exc}", file=name)], "could not read file") from None


def read_input(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> Located:
    """A YAML file or pipe, loaded with line numbers; a pipe is read once within ``max_bytes``."""
    if is_stream(path):
        return load_yaml_text(read_stream(path, max_bytes), file=os.fspath(path))
    return load_yaml_file(path, max_bytes=max_bytes)


def _name_of(path: str) -> str:
    """A pipeline's name: its file's stem, or its folder's name for a plain pipeline.yaml
    (``pipeline`` for one read from a pipe, whose name is a file descriptor's)."""
    if is_stream(path):
        return "pipeline"
    base = os.path.basename(path)
    for suffix in (".yaml", ".yml"):
        base = base.removesuffix(suffix)
    if base == "pipeline":
        base = os.path.basename(os.path.dirname(os.path.abspath(path))) or base
    return base or "pipeline"


def load_pipeline(path: str | os.PathLike[str]) -> LoadedPipeline:
    """Read and validate a pipeline file; raise SpecError listing every problem.

    A pipeline read from a pipe has no file to read again nor a folder of functions: its
    ``file`` is None, so its functions are found from the working directory."""
    stream = is_stream(path)
    loaded = pipeline_from_located(read_input(path), _name_of(os.fspath(path)))
    return replace(loaded, file=None) if stream else loaded


def load_pipeline_text(text: str, name: str = "pipeline", file: str | None = None) -> LoadedPipeline:
    """A pipeline from YAML text (the server's submissions)."""
    return pipeline_from_located(load_yaml_text(text, file=file), name)


def load_config(path: str | os.PathLike[str] | None) -> RunConfig:
    """Read a run config; no file at all means the embedded default."""
    if path is None:
        return RunConfig()
    located = load_yaml_file(path)
    config = _config(located)
    config._source = located
    return config


def config_from_data(data: Mapping[str, object] | None) -> RunConfig:
    """A run config from data (the SDK's mappings)."""
    return _config(Located(data=dict(data or {}), file=None))


def _config(located: Located, environ: Mapping[str, str] | None = None) -> RunConfig:
    """A run config, runnable's names read as conveyor's (``conveyor.spec.compat``), its
    ``$name`` variables filled from ``environ`` (by default this process's environment)."""
    if located.issues:
        raise SpecError(list(located.issues), "invalid config")
    translated = translate(located, environ)
    config = build_model(RunConfig, replace(located, data=translated.data), "invalid config")
    config._notes = translated.notes
    config._retry_of = translated.retry_of
    return config


def _decode(name: str, text: str, where: str | None = None) -> JSONValue:
    """A CONVEYOR_PRM_ or ``--param`` value by the same rule as a parameters file (YAML 1.2
    core, so JSON too): ``3`` a number, ``[1, 2]`` a list, ``yes`` text; what is not YAML
    stays text."""
    try:
        value, located = parse_yaml_text(text, file=where or f"${name}")
    except SpecError:
        return text
    if located.issues:
        raise SpecError(located.issues, "invalid parameters")
    return value


def parse_params(options: Sequence[str]) -> JSONObject:
    """``--param key=value`` options, each value read as in a parameters file; a later one
    wins. A malformed option (no ``=``, no key) is a SpecError naming it."""
    params: JSONObject = {}
    for option in options:
        key, equals, value = option.partition("=")
        if not equals or not key or key != key.strip():
            raise SpecError(
                [
                    Issue(
                        "a parameter is given as NAME=VALUE",
                        file="command line",
                        path=(f"--param {option}",),
                        expected="NAME=VALUE with a name and no spaces around it, e.g. --param size=3",
                        found="no '='"
                        if not equals
                        else "no name"
                        if not key.strip()
                        else "spaces around the name",
                    )
                ],
                "invalid option",
            )
        params[key] = _decode(key, value, where=f"--param {key}")
    return params


def load_parameters(
    path: str | os.PathLike[str] | None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, JSONValue] | None = None,
) -> JSONObject:
    """Initial parameters: the file's (or pipe's), then RUNNABLE_PRM_<name> and
    CONVEYOR_PRM_<name> values, then ``overrides`` (``--param``, see :func:`parse_params`):
    the later wins. All are read by one rule (YAML 1.2 core); duplicate keys are errors, as
    in pipelines."""
    params: JSONObject = {}
    if path is not None:
        located = read_input(path, max_bytes=PARAMS_MAX_BYTES)
        if located.data is not None and not isinstance(located.data, dict):
            raise SpecError(
                [
                    Issue(
                        "parameters must be a mapping of name to value",
                        file=located.file,
                        line=1,
                        expected="a mapping like 'name: value'",
                        found=describe(located.data),
                    )
                ],
                "invalid parameters",
            )
        if located.issues:
            raise SpecError(located.issues, "invalid parameters")
        params.update(located.data or {})
    env = os.environ if environ is None else environ
    for prefix in (RUNNABLE_ENV_PREFIX, ENV_PREFIX):
        for key, value in env.items():
            if key.startswith(prefix) and len(key) > len(prefix):
                params[key[len(prefix) :]] = _decode(key, value)
    params.update(overrides or {})
    return params

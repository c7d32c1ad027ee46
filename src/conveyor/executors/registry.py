"""Backends found by ``type:`` name through entry points; built-ins are registered the same way.

Built-in names resolve without scanning installed distributions (that scan costs start-up
time); any other name is looked up in the entry point group, so a plugin package adds a
backend by declaring ``[project.entry-points."conveyor.executors"] mine = "pkg:Class"``.

:data:`BUILTINS` repeats the entry points ``pyproject.toml`` declares, on purpose: a clone
run from ``PYTHONPATH`` and the server's sandbox have no installed metadata to scan, and the
scan is the slow part of starting. ``tests/executors/test_registry.py`` holds the two equal
(and equal to the installed metadata, where there is some).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from pydantic import ValidationError

from conveyor.executors.base import Configured
from conveyor.executors.checks import problems
from conveyor.spec.config import Backend
from conveyor.spec.errors import Issue, SpecError, did_you_mean

BUILTINS: dict[str, dict[str, str]] = {
    "conveyor.executors": {
        "local": "conveyor.executors.local:LocalExecutor",
        "argo": "conveyor.executors.argo.executor:ArgoExecutor",
        "dask": "conveyor.executors.dask:DaskExecutor",
        "mocked": "conveyor.executors.mocked:MockedExecutor",
    },
    "conveyor.run_log_stores": {
        "memory": "conveyor.runlog.memory:MemoryRunLogStore",
        "file": "conveyor.runlog.file:file_store",
        "sqlite": "conveyor.runlog.sqlite:SQLiteRunLogStore",
        "postgres": "conveyor.runlog.sql:SQLRunLogStore",
        "sql": "conveyor.runlog.sql:SQLRunLogStore",
        "relay": "conveyor.runlog.relay:RelayRunLogStore",
    },
    "conveyor.catalogs": {
        "none": "conveyor.catalog.store:InProcessCatalog",
        "file": "conveyor.catalog.store:FsspecCatalog",
    },
    "conveyor.secrets": {
        "none": "conveyor.step.secrets:NoSecrets",
        "env": "conveyor.step.secrets:EnvSecrets",
        "dotenv": "conveyor.step.secrets:DotenvSecrets",
    },
}
SECTIONS = {
    "conveyor.executors": "executor",
    "conveyor.run_log_stores": "run_log_store",
    "conveyor.catalogs": "catalog",
    "conveyor.secrets": "secrets",
}


def _config_error(group: str, message: str, **kw: Any) -> SpecError:
    section = SECTIONS[group]
    return SpecError([Issue(message, path=(section,), **kw)], "invalid config")


def _target(group: str, name: str) -> str:
    builtin = BUILTINS[group].get(name)
    if builtin:
        return builtin
    from importlib.metadata import entry_points

    found = {ep.name: ep.value for ep in entry_points(group=group)}
    if name in found:
        return found[name]
    known = sorted(set(BUILTINS[group]) | set(found))
    raise _config_error(
        group,
        f"unknown {SECTIONS[group]} type '{name}'",
        expected="one of " + ", ".join(known),
        found=f"'{name}'",
        hint=did_you_mean(name, known),
    )


def build(group: str, backend: Backend, check_only: bool = False, connect: bool = False, **extra: Any) -> Any:
    """Instantiate the backend named by ``backend.type`` with its ``config``.

    The config is checked first (keys, the backend's config model, and what
    :mod:`conveyor.executors.checks` can tell without connecting). With ``check_only``
    nothing is built: no files opened, no cluster started; ``connect`` then also tries to
    reach databases, clusters and object stores.
    """
    module_name, _, attr = _target(group, backend.type).partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except ImportError as exc:
        raise _config_error(
            group,
            f"{SECTIONS[group]} '{backend.type}' cannot be loaded: {exc}",
            hint=f"install its extra: pip install 'conveyor[{backend.type}]'",
        ) from None
    params = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    allowed = [n for n in params if n not in extra]
    unknown = [k for k in backend.config if k not in allowed] if not takes_any else []
    if unknown:
        raise SpecError(
            [
                Issue(
                    f"{SECTIONS[group]} '{backend.type}' does not take '{key}'",
                    path=(SECTIONS[group], "config", key),
                    expected="one of " + (", ".join(allowed) or "no keys"),
                    found=f"'{key}'",
                    hint=did_you_mean(key, allowed),
                )
                for key in unknown
            ],
            "invalid config",
        )
    found = problems(group, backend.type, backend.config, connect=check_only and connect)
    if found:
        raise SpecError(
            [
                Issue(f"{SECTIONS[group]} '{backend.type}': {p}", path=(SECTIONS[group], "config"))
                for p in found
            ],
            "unusable config",
        )
    model = cls.config_model if isinstance(cls, Configured) else None
    try:
        if check_only:
            if model is not None:
                model.model_validate(backend.config)
            return None
        return cls(**backend.config, **extra)
    except ValidationError as exc:
        fields = list(model.model_fields) if model is not None else []
        raise SpecError(
            [_config_issue(group, backend.type, err, fields) for err in exc.errors()], "invalid config"
        ) from None
    except (TypeError, ValueError) as exc:
        raise _config_error(group, f"{SECTIONS[group]} '{backend.type}': {exc}") from None
    except SpecError:
        raise
    except Exception as exc:  # a backend that cannot be made (a database refusing, a cluster away)
        raise _config_error(
            group, f"{SECTIONS[group]} '{backend.type}' cannot be used: {type(exc).__name__}: {exc}"
        ) from None


def _config_issue(group: str, kind: str, err: Any, fields: list[str]) -> Issue:
    """A backend's config problem, said the way pipeline problems are."""
    path = (SECTIONS[group], "config", *(str(p) for p in err["loc"]))
    key = path[-1]
    if err["type"] == "missing":
        return Issue(
            f"missing key '{key}'",
            path=path,
            expected=f"a value for '{key}'",
            found="nothing",
            hint=f"{SECTIONS[group]} '{kind}' needs it",
        )
    if err["type"] == "extra_forbidden":
        return Issue(
            f"unknown key '{key}'",
            path=path,
            expected="one of " + ", ".join(fields),
            found=f"'{key}'",
            hint=did_you_mean(key, fields) or "remove it; unknown keys are never ignored",
        )
    found = repr(err.get("input"))[:60]
    if err["type"] == "literal_error":  # a choice: name the choices, and the nearest one
        choices = str((err.get("ctx") or {}).get("expected", ""))
        words = [w.strip("' ") for w in choices.replace(" or ", ",").split(",") if w.strip("' ")]
        return Issue(
            f"{SECTIONS[group]} '{kind}': '{key}' is not one of its choices",
            path=path,
            expected=f"one of {choices}",
            found=found,
            hint=did_you_mean(str(err.get("input")), words) or f"write one of {choices}",
        )
    return Issue(f"{SECTIONS[group]} '{kind}': {err['msg']}", path=path, expected=err["msg"], found=found)

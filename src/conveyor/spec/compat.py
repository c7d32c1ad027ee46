"""runnable's run configs, read as conveyor's: its type names, its common keys, its Argo config.

A team moving from runnable brings its config files as they are. Each runnable name is
translated here, before the config is checked, into what conveyor does the same way. A key
with no meaning in conveyor is accepted with a one-line note saying what conveyor does
instead (never silently); one that cannot be translated is refused, located, naming the
conveyor key to use. A config without a run log store or catalog section gets conveyor's
defaults (``file`` stores under ``.conveyor/``): kept on disk, as runnable keeps them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.spec.errors import Issue, PathPart, SpecError
from conveyor.spec.yamlload import Located

SECTIONS = {
    "executor": ("executor", "pipeline-executor", "pipeline_executor"),
    "run_log_store": ("run_log_store", "run-log-store"),
    "catalog": ("catalog",),
    "secrets": ("secrets",),
}


@dataclass
class Translated:
    """A config's data in conveyor's names, what was said about it, and a run to retry."""

    data: Any
    notes: list[str] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    retry_of: str | None = None


class _Section:
    """One section being translated: its path in the file, its config, what was said."""

    def __init__(
        self, out: Translated, located: Located, path: tuple[PathPart, ...], config: Mapping[str, object]
    ):
        self.out, self.located, self.path = out, located, path
        #: The section's config as translated so far: values are passed on, not read.
        self.config: dict[str, object] = dict(config)

    def note(self, key: str, text: str) -> None:
        """Accept ``key`` (taken out of the config) with a note of what conveyor does instead."""
        self.config.pop(key, None)
        self.tell((key,), text)

    def tell(self, keys: tuple[PathPart, ...], text: str) -> None:
        """A one-line note about ``keys`` of this section's config."""
        self.out.notes.append(f"{'.'.join(map(str, (*self.path, 'config', *keys)))}: {text}")

    def refuse(self, keys: tuple[PathPart, ...], message: str, use: str) -> None:
        path = (*self.path, "config", *keys)
        self.out.issues.append(
            self.located.issue(
                path,
                message,
                expected=f"conveyor's key: {use}",
                found=f"'{keys[-1]}'" if keys else None,
                hint=f"write it as {use}",
            )
        )

    def rename(self, old: str, new: str) -> None:
        if old in self.config:
            self.config[new] = self.config.pop(old)


Rule = Callable[[_Section, str], str]


def _folder(in_memory: str, key: str, conveyor_key: str, default: str) -> Rule:
    """A rule for runnable's run log stores and catalogs: ``buffered``/``do-nothing`` are
    conveyor's ``in_memory`` type; the others are ``file`` in runnable's ``key`` folder
    (conveyor's ``conveyor_key``), ``default`` as runnable's default."""

    def rule(s: _Section, kind: str) -> str:
        if kind in ("buffered", "do-nothing"):
            return in_memory
        s.rename(key, conveyor_key)
        s.config.setdefault(conveyor_key, default)
        return "file"

    return rule


_run_log_store = _folder("memory", "log_folder", "path", ".run_log_store")
_catalog = _folder("none", "catalog_location", "location", ".catalog")


def _secrets(s: _Section, kind: str) -> str:
    return {"do-nothing": "none", "env-secrets": "env", "dotenv": "dotenv"}[kind]


def _local(s: _Section, kind: str) -> str:
    if "enable_parallel" in s.config:
        s.note(
            "enable_parallel",
            "conveyor always runs parallel branches and map items concurrently; "
            "limit them with max_workers or a map's max_parallelism",
        )
    if "object_serialisation" in s.config:
        s.note(
            "object_serialisation",
            "conveyor pickles returns declared as objects (pickled(...) / kind: object) into the "
            "catalog when it has one, and keeps them in memory with catalog 'none'",
        )
    if kind == "emulator":
        s.config.setdefault("isolation", "process")  # each step in a process of its own
    return "local"


def _retry(s: _Section, kind: str) -> str:
    run_id = s.config.pop("run_id", None)
    if not isinstance(run_id, str) or not run_id:
        s.refuse(
            ("run_id",), "executor 'retry' needs the run_id of the run to retry", "conveyor retry RUN_ID"
        )
    else:
        s.out.retry_of = run_id
        s.out.notes.append(
            f"executor 'retry': conveyor resumes run '{run_id}' in place (as 'conveyor retry {run_id}' "
            "does): its succeeded steps are reused"
        )
    return "local"


#: The keys conveyor's mocked executor takes; runnable's takes any others, and so does conveyor.
MOCKED_KEYS = ("patches", "max_workers")


def _mocked(s: _Section, kind: str) -> str:
    for key in sorted(k for k in s.config if k not in MOCKED_KEYS):
        s.note(key, "runnable's mocked executor accepts any key; conveyor's reads patches, max_workers")
    return "mocked"


def _argo(s: _Section, kind: str) -> str:
    from conveyor.spec.compat_argo import translate_argo

    if any(k in s.config for k in ("defaults", "argoWorkflow", "argo_workflow", "pvc_for_runnable")):
        translate_argo(s)
    return "argo"


RULES: dict[str, dict[str, Rule]] = {
    "run_log_store": {
        "buffered": _run_log_store,
        "file-system": _run_log_store,
        "chunked-fs": _run_log_store,
    },
    "catalog": {"do-nothing": _catalog, "file-system": _catalog},
    "secrets": {"do-nothing": _secrets, "env-secrets": _secrets, "dotenv": _secrets},
    "executor": {
        "local": _local,
        "emulator": _local,
        "retry": _retry,
        "mocked": _mocked,
        "argo": _argo,
    },
}


#: ``$name`` or ``${name}``; ``$$`` is a literal dollar.
VARIABLE = re.compile(r"\$(?:\$|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def variable_value(name: str, environ: Mapping[str, str]) -> str | None:
    """A config variable's value: ``CONVEYOR_VAR_<name>``, runnable's ``RUNNABLE_VAR_<name>``,
    then ``<name>`` itself, the first set."""
    for key in (f"CONVEYOR_VAR_{name}", f"RUNNABLE_VAR_{name}", name):
        if key in environ:
            return environ[key]
    return None


def fill_variables(located: Located, environ: Mapping[str, str] | None = None) -> tuple[Any, list[Issue]]:
    """The config's data with ``$name`` / ``${name}`` in its text filled from the environment.

    runnable's configs are templates (``image: $docker_image``); a variable that is not set is
    an error naming it, never the text left in place. A mocked executor's ``patches`` are
    commands whose ``$`` belongs to the shell, and are left as written.
    """
    env = os.environ if environ is None else environ
    issues: list[Issue] = []

    def fill(value: Any, path: tuple[PathPart, ...]) -> Any:
        if isinstance(value, dict):
            return {k: v if k == "patches" else fill(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v, (*path, i)) for i, v in enumerate(value)]
        if not isinstance(value, str) or "$" not in value:
            return value

        def one(match: re.Match[str]) -> str:
            name = match.group("braced") or match.group("bare")
            if name is None:
                return "$"
            found = variable_value(name, env)
            if found is None:
                issues.append(
                    located.issue(
                        path,
                        f"the config uses the variable '{name}', which is not set",
                        expected=f"an environment variable {name} (or CONVEYOR_VAR_{name})",
                        found=repr(value),
                        hint=f"export {name}=... before running, or write $$ for a literal $",
                    )
                )
                return match.group(0)
            return found

        return VARIABLE.sub(one, value)

    return fill(located.data, ()), issues


def translate(located: Located, environ: Mapping[str, str] | None = None) -> Translated:
    """The config's data with runnable's names turned into conveyor's, its variables filled
    from ``environ`` (this process's environment by default; a server passes none of its own)."""
    data, issues = fill_variables(located, environ)
    if issues:
        raise SpecError(issues, "invalid config")
    out = Translated(data)
    if not isinstance(data, dict):
        return out
    data = dict(data)
    for section, keys in SECTIONS.items():
        for key in keys:
            value = data.get(key)
            if not isinstance(value, dict) or not isinstance(value.get("type"), str):
                continue
            rule = RULES[section].get(value["type"])
            config = value.get("config", {})
            if rule is None or not isinstance(config, dict):
                continue
            s = _Section(out, located, (key,), config)
            new_type = rule(s, value["type"])
            data[key] = {**value, "type": new_type, "config": s.config}
            if not s.config:
                data[key].pop("config")
    out.data = data
    if out.issues:
        raise SpecError(out.issues, "invalid config")
    return out

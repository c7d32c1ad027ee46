"""runnable's Argo executor config (``defaults``, ``argoWorkflow``, ``pvc_for_runnable``...)
translated into conveyor's ``executor: {type: argo, config: ...}``.

Keys are read in either spelling runnable accepts (``imagePullPolicy`` or
``image_pull_policy``). What maps one to one is moved; what conveyor does another way is a
note; what cannot be expressed is refused with the conveyor key to use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol

from conveyor.spec.errors import PathPart


class _Section(Protocol):
    """The section being translated (``conveyor.spec.compat``): its config, and what is said.
    The config is as the YAML file gave it: read here, checked by ``ArgoConfig`` after."""

    config: dict[str, object]

    def tell(self, keys: tuple[PathPart, ...], text: str) -> None: ...

    def refuse(self, keys: tuple[PathPart, ...], message: str, use: str) -> None: ...


#: conveyor's own Argo config keys (``executors.argo.config.ArgoConfig``), kept as they are
#: when a config mixes them with runnable's.
CONVEYOR_KEYS = frozenset(
    [
        "image",
        "image_pull_policy",
        "resources",
        "node_selector",
        "tolerations",
        "env",
        "secrets",
        "volume_mounts",
        "namespace",
        "service_account",
        "volumes",
        "pvcs",
        "parallelism",
        "ttl_seconds",
        "pod_gc",
        "active_deadline_seconds",
        "labels",
        "annotations",
        "schedule",
        "timezone",
        "pipeline_file",
        "config_file",
        "parameters_file",
        "working_dir",
        "command",
        "overrides",
    ]
)
#: Where runnable mounts ``pvc_for_runnable`` in every pod.
RUNNABLE_PVC_MOUNT = "/tmp"


def _snake(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower()


def _snake_keys(given: Mapping[str, object]) -> dict[str, object]:
    """runnable's keys in either spelling (``imagePullPolicy``, ``image_pull_policy``) as one."""
    return {_snake(k): v for k, v in given.items()}


def _fields(value: object) -> dict[str, object] | None:
    """``value``'s keys in snake case if it is a mapping; None if it is not one."""
    return _snake_keys(value) if isinstance(value, dict) else None


def _entries(out: dict[str, object], key: str) -> dict[object, object]:
    """``out[key]``, the mapping a translation adds to (new if there is none). Were it
    something else (conveyor's own key, written wrongly), it stays for ``ArgoConfig`` to refuse,
    located, and what is added here is left out."""
    found = out.setdefault(key, {})
    return found if isinstance(found, dict) else {}


def _items(out: dict[str, object], key: str) -> list[object]:
    """``out[key]``, the list a translation appends to (see :func:`_entries`)."""
    found = out.setdefault(key, [])
    return found if isinstance(found, list) else []


def _env(s: _Section, where: tuple[str, ...], items: object, out: dict[str, object]) -> None:
    if not isinstance(items, list):
        s.refuse(
            where,
            "env must be a list of {name, value} or {name, secretName, secretKey}",
            "env: {NAME: value}",
        )
        return
    for i, given in enumerate(items):
        item = _fields(given)
        if item is None or ("name" not in item and "environment_variable" not in item):
            s.refuse((*where, i), "an env entry needs a name", "env: {NAME: value}")
        elif "secret_name" in item:
            name = item.get("environment_variable") or item.get("name")
            _entries(out, "secrets")[name] = {
                "name": item["secret_name"],
                "key": item.get("secret_key", name),
            }
        else:
            _entries(out, "env")[item["name"]] = str(item.get("value", ""))


def _resources(value: object) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for part in ("requests", "limits"):
        given = value.get(part) if isinstance(value, dict) else None
        if isinstance(given, dict):
            out[part] = {
                ("nvidia.com/gpu" if k == "gpu" else k): str(v)
                for k, v in given.items()
                if v not in (None, 0)
            }
    return out


def _pod(s: _Section, where: tuple[str, ...], given: Mapping[str, object], out: dict[str, object]) -> None:
    """runnable's ``defaults``: the settings of every pod."""
    for key, value in _snake_keys(given).items():
        at = (*where, key)
        if key in ("image", "image_pull_policy", "node_selector", "tolerations", "parallelism"):
            out[key] = value
        elif key == "resources":
            out["resources"] = _resources(value)
        elif key == "env":
            _env(s, at, value, out)
        elif key == "active_deadline_seconds":
            out.setdefault("active_deadline_seconds", value)
        elif key in ("fail_fast", "retry_strategy", "timeout"):
            s.tell(at, "conveyor sets this per step (retry: and timeout_seconds: in the pipeline)")
        else:
            s.refuse(at, f"runnable's '{key}' has no conveyor equivalent", "executor.config keys of conveyor")


#: What a named override may set: conveyor's pod settings (``PodSettings``), as ``_pod``
#: writes them.
POD_KEYS = frozenset(
    ["image", "image_pull_policy", "resources", "node_selector", "tolerations", "env", "secrets"]
)


def _override(s: _Section, name: str, given: object) -> dict[str, object]:
    """One of runnable's named ``overrides``: pod settings written as its ``defaults`` are,
    used by the steps that say ``overrides: {argo: NAME}``."""
    where = ("overrides", name)
    if not isinstance(given, dict):
        s.refuse(where, f"override '{name}' must be a mapping of pod settings", "overrides: {NAME: {...}}")
        return {}
    out: dict[str, object] = {}
    _pod(s, where, given, out)
    for key in sorted(set(out) - POD_KEYS):
        s.refuse(
            (*where, key),
            f"'{key}' cannot be set for one step",
            "the workflow's own key (parallelism: or a map's max_parallelism:, a step's timeout_seconds:)",
        )
        out.pop(key)
    return out


def _workflow(
    s: _Section, where: tuple[str, ...], workflow: Mapping[str, object], out: dict[str, object]
) -> None:
    """runnable's ``argoWorkflow``: the workflow's metadata and spec."""
    given = _snake_keys(workflow)
    meta = _fields(given.get("metadata") or {})
    spec = _fields(given.get("spec") or {})
    for part, fields, use in (
        ("metadata", meta, "labels: or annotations:"),
        ("spec", spec, "executor.config keys"),
    ):
        if fields is None:
            s.refuse((*where, part), f"argoWorkflow's {part} must be a mapping", use)
    for key, value in (meta or {}).items():
        if key in ("namespace", "labels", "annotations"):
            out[key] = value
        elif key == "generate_name":
            s.tell((*where, "metadata", key), "conveyor names the workflow after the pipeline (PIPELINE-)")
        else:
            s.refuse(
                (*where, "metadata", key), f"unknown workflow metadata '{key}'", "labels: or annotations:"
            )
    for key, value in (spec or {}).items():
        at = (*where, "spec", key)
        if key in ("parallelism", "active_deadline_seconds", "node_selector", "tolerations"):
            out[key] = value
        elif key == "service_account_name":
            out["service_account"] = value
        elif key == "pod_gc":
            gc = _fields(value)
            strategy = gc.get("strategy") if gc is not None else value
            if strategy:
                out["pod_gc"] = strategy
        elif key in ("retry_strategy", "template_defaults", "entrypoint", "arguments"):
            s.tell(
                at, "conveyor renders this itself (retries from each step's retry:, parameters from a file)"
            )
        else:
            s.refuse(
                at, f"runnable's workflow spec '{key}' has no conveyor equivalent", "executor.config keys"
            )
    extra = set(given) - {"metadata", "spec"}
    for key in sorted(extra):
        s.refuse((*where, key), f"unknown argoWorkflow key '{key}'", "metadata: and spec:")


def translate_argo(s: _Section) -> None:
    """Rewrite ``s.config`` (runnable's Argo config) into conveyor's ArgoConfig keys."""
    given = _snake_keys(s.config)
    out: dict[str, object] = {}
    for key, value in given.items():
        if key == "defaults" and isinstance(value, dict):
            _pod(s, ("defaults",), value, out)
        elif key == "argo_workflow" and isinstance(value, dict):
            _workflow(s, ("argoWorkflow",), value, out)
        elif key == "pvc_for_runnable" and isinstance(value, str):
            _items(out, "pvcs").append({"claim": value, "mount_path": RUNNABLE_PVC_MOUNT})
        elif key == "custom_volumes" and isinstance(value, list):
            for i, item in enumerate(value):
                volume = _fields(item)
                if volume is None:
                    s.refuse(
                        ("custom_volumes", i),
                        "a custom volume must be a mapping",
                        "pvcs: [{claim, mount_path}]",
                    )
                    continue
                claim = _fields(volume.get("persistent_volume_claim") or {}) or {}
                _items(out, "pvcs").append(
                    {
                        "claim": claim.get("claim_name"),
                        "mount_path": volume.get("mount_path"),
                        "read_only": bool(claim.get("read_only", False)),
                    }
                )
        elif key == "secrets_from_k8s" and isinstance(value, list):
            _env(s, ("secrets_from_k8s",), value, out)
        elif key == "cron_schedule" and isinstance(value, dict):
            cron = _snake_keys(value)
            schedules = cron.get("schedules") or []
            if not isinstance(schedules, list) or len(schedules) != 1:
                s.refuse(
                    ("cron_schedule", "schedules"),
                    "conveyor takes one cron schedule",
                    "schedule: '0 2 * * *'",
                )
            else:
                out["schedule"] = schedules[0]
            if cron.get("timezone"):
                out["timezone"] = cron["timezone"]
        elif key in ("expose_parameters_as_inputs", "configmap_cache_name", "output_file", "log_level"):
            what = {
                "expose_parameters_as_inputs": "conveyor passes initial parameters in the parameters file",
                "configmap_cache_name": "conveyor keeps no memoization cache in a config map",
                "output_file": "conveyor writes the manifest where 'conveyor render argo -o FILE' says",
                "log_level": "conveyor's pods log the steps' own output",
            }[key]
            s.tell((key,), what)
        elif key == "overrides" and isinstance(value, dict):
            out["overrides"] = {name: _override(s, name, given) for name, given in value.items()}
        elif key in CONVEYOR_KEYS:
            out[key] = value  # already conveyor's
        else:
            s.refuse(
                (key,), f"runnable's Argo key '{key}' has no conveyor equivalent", "executor.config keys"
            )
    s.config = out

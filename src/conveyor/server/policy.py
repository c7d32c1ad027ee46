"""What a submitted config may choose on the server, and the config a run really gets.

On the server, where a run is recorded, where its files and cache entries go and where its
secrets come from are the operator's choice, never a path a user names: a user who could
name a location could have the run's engine read the server's database or write the server
user's files. A submitted config may choose:

- ``executor``: a type the operator allows (``CONVEYOR_SERVER_EXECUTORS``) and its options;
- ``catalog``: ``none``, or ``file`` with no location (the default): the user's own catalog
  under the operator's ``CONVEYOR_SERVER_CATALOG`` (``<data>/catalog/user-<id>``), kept
  across that user's runs, so cache entries are served to that user only;
- ``secrets``: ``env`` (the default: the operator's ``CONVEYOR_SERVER_SECRETS``) or ``none``;
- no ``run_log_store``: the server records every run in its database.

Anything else is refused at submission with a located 422. Argo runs are the exception:
their steps run in the cluster's pods, which read and write the locations their config
names there (the server's sandbox follows the workflow, it opens none of them itself).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from conveyor.jsontypes import JSONObject
from conveyor.spec.config import RunConfig
from conveyor.spec.errors import Issue, SpecError

FILE = "<submitted config>"


def data_dir() -> Path:
    """The server's data directory (``$XDG_DATA_HOME/conveyor``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "conveyor"


def catalog_root() -> Path:
    """Where users' catalogs live, one folder each (``CONVEYOR_SERVER_CATALOG``)."""
    return Path(os.environ.get("CONVEYOR_SERVER_CATALOG") or data_dir() / "catalog")


def user_catalog(user_id: int) -> Path:
    """One user's catalog (and cache): never shared with another user."""
    return catalog_root() / f"user-{int(user_id)}"


def _given(located: Any, *names: str) -> bool:
    data = getattr(located, "data", None)
    return isinstance(data, dict) and any(name in data for name in names)


def problems(config: RunConfig, located: Any) -> SpecError | None:
    """The sections of a submitted config that choose what only the operator may (located)."""
    if config.executor.type == "argo":
        return None
    issues = []
    if _given(located, "run_log_store", "run-log-store"):
        issues.append(
            Issue(
                "the server records every run in its own database",
                path=("run_log_store",),
                expected="no run_log_store",
                found=f"run_log_store of type '{config.run_log_store.type}'",
                hint="remove run_log_store: see runs with 'conveyor runs show RUN_ID' on the server",
            )
        )
    catalog = config.catalog
    given = _given(located, "catalog")  # the default (kept under .conveyor/) is not the user's choice
    if given and (catalog.type not in ("none", "file") or (catalog.type == "file" and catalog.config)):
        issues.append(
            Issue(
                "the server keeps each user's catalog (and cache) in a place of its own",
                path=("catalog",),
                expected="catalog: {type: file} (your catalog on the server) or {type: none}",
                found=f"catalog of type '{catalog.type}' with {sorted(catalog.config) or 'no'} config",
                hint="remove the catalog's config: your runs share your own catalog on the server",
            )
        )
    if config.secrets.type not in ("env", "none"):
        issues.append(
            Issue(
                "a run's secrets on the server are those its operator gives it",
                path=("secrets",),
                expected="secrets: {type: env} (the operator's CONVEYOR_SERVER_SECRETS) or {type: none}",
                found=f"secrets of type '{config.secrets.type}'",
                hint="ask the operator to add the secret to CONVEYOR_SERVER_SECRETS",
            )
        )
    if not issues:
        return None
    return config.locate(SpecError(issues, "this server chooses where runs keep their data"))


def options(config: JSONObject, section: str) -> JSONObject:
    """The ``config`` of one section of a run's config as :func:`run_config` writes it
    (``executor``, ``catalog``...), made empty if it has none, to be read or filled in."""
    part = config[section]
    if not isinstance(part, dict):
        raise TypeError(f"the run config's {section} is not a mapping")
    found = part.setdefault("config", {})
    if not isinstance(found, dict):
        raise TypeError(f"the run config's {section}.config is not a mapping")
    return found


def run_config(
    config: RunConfig,
    user_id: int,
    snapshot: str,
    sandboxed: bool,
    catalog_given: bool = True,
    declares_secrets: bool = False,
) -> JSONObject:
    """The config a run's engine gets: the user's executor, the operator's locations (the
    user's own catalog unless the config says ``catalog: {type: none}``), and a run log
    relayed to the trusted side (or the user's own stores, for Argo)."""
    data: JSONObject = config.model_dump(mode="json")
    if config.executor.type == "argo":
        return data
    data["run_log_store"] = {"type": "relay", "config": {"snapshot": snapshot}}
    if config.catalog.type == "file" or not catalog_given:
        data["catalog"] = {"type": "file", "config": {"location": str(user_catalog(user_id))}}
    if sandboxed and config.executor.type == "local":
        # Steps in a pool of long-lived processes of their own (``conveyor.step.pool``): one
        # that runs out of memory is killed alone, and none can read the engine's memory
        # (the engine is not dumpable); no interpreter start per step or map item. A run
        # that asks for a fresh process per step (``process``) keeps it: no less isolated.
        # Not for a run whose steps declare secrets: a thread a step leaves behind in a pool
        # process would outlive it and could read a later secret step's environment (its
        # /proc/PID/environ, same user); a process per step leaves nothing running between
        # steps (leftovers are killed when each step ends).
        executor = options(data, "executor")
        if declares_secrets:
            executor["isolation"] = "process"
        elif executor.get("isolation") != "process":
            executor["isolation"] = "pool"
    return data

"""The run configuration: where a pipeline runs, where its run log and artifacts go."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PrivateAttr

if TYPE_CHECKING:
    from conveyor.spec.errors import SpecError


class Backend(BaseModel):
    """A backend chosen by ``type`` name; its ``config`` is checked by the backend itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    config: dict[str, object] = Field(default_factory=dict)


class RunConfig(BaseModel):
    """With no config at all, a pipeline runs in-process and its run log and catalog are kept
    on disk in the working directory (the ``file`` backends' own defaults: ``.conveyor/runs``
    and ``.conveyor/catalog``), so that ``runs show``, ``retry``, ``ui`` and the step cache
    find a run after a plain ``conveyor execute``. ``memory`` and ``none`` are chosen by name.
    The ``file`` types carry no config here: a server reads that as "put it where you keep
    my runs" (``server/policy.py``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    executor: Backend = Field(
        default_factory=lambda: Backend(type="local"),
        validation_alias=AliasChoices("executor", "pipeline-executor", "pipeline_executor"),
    )
    run_log_store: Backend = Field(
        default_factory=lambda: Backend(type="file"),
        validation_alias=AliasChoices("run_log_store", "run-log-store"),
    )
    catalog: Backend = Field(default_factory=lambda: Backend(type="file"))
    secrets: Backend = Field(default_factory=lambda: Backend(type="env"))
    #: Where the config was read from (file, lines), to locate problems found later.
    _source: Any = PrivateAttr(default=None)
    #: What reading it said: runnable keys accepted with what conveyor does instead.
    _notes: list[str] = PrivateAttr(default_factory=list)
    #: A runnable ``retry`` executor's run: running with this config resumes that run.
    _retry_of: str | None = PrivateAttr(default=None)

    @property
    def notes(self) -> list[str]:
        """One line each: a runnable key accepted, and what conveyor does instead."""
        return list(self._notes)

    @property
    def retry_of(self) -> str | None:
        """The run a runnable ``retry`` executor config names, if any."""
        return self._retry_of

    def locate(self, error: SpecError) -> SpecError:
        """Give a SpecError's issues about this config their file and line."""
        located = self._source
        if located is None:
            return error
        from dataclasses import replace

        error.issues = [
            replace(i, file=i.file or located.file, line=i.line or located.line_of(tuple(i.path)))
            for i in error.issues
        ]
        return error

"""The pipeline format: plain data, validated when built, no I/O.

The seed format (``dag: {start_at, steps}``) is the interface users and every executor
depend on. Unknown keys are errors, never silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    SerializeAsAny,
    SerializerFunctionWrapHandler,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError

from conveyor.spec import kindreg

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
TERMINALS = ("success", "fail")
#: The longest a task may be given (a week), and the longest first retry wait (a day).
MAX_TIMEOUT = 7 * 24 * 3600.0
MAX_BACKOFF = 24 * 3600.0
#: The most iterations a loop may be given (an Argo workflow nests one level per iteration).
MAX_ITERATIONS = 10_000


def _override(value: Any) -> Any:
    # One clear message instead of one per member of the union.
    if isinstance(value, dict) or (isinstance(value, str) and value.strip()):
        return value
    raise ValueError(
        "an override is the executor's settings (a mapping) or the name of an override defined "
        f"in the run config's executor section, e.g. overrides: {{argo: smaller}}; found {repr(value)[:80]}"
    )


#: A step's ``overrides`` value for one executor: the settings, or the name of settings
#: defined in the executor's config.
Override = Annotated[dict[str, object] | Annotated[str, Field(min_length=1)], BeforeValidator(_override)]


class Strict(BaseModel):
    """Frozen, and strict about keys: an unknown key is an error, never silently dropped.

    Each model's validator is built when the model is first used (``defer_build``), not at
    import: a pipeline of tasks never pays for the map, loop and partition models, and
    building them all was a fifth of a short run's start-up."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ReturnSpec(Strict):
    """A name for one returned value, in order."""

    name: Annotated[str, Field(pattern=IDENTIFIER)]
    kind: Literal["json", "object", "metric"] = "json"


class CatalogSpec(Strict):
    """Files fetched from the catalog before a step (get) and stored after it (put).

    A pattern that matches nothing is a warning in the step's log (a typo, usually), or,
    with ``strict: true``, a failure of the step.
    """

    get: list[str] = Field(default_factory=list)
    put: list[str] = Field(default_factory=list)
    strict: bool = False

    @model_serializer(mode="wrap")
    def _without_default_strict(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Written only when set: pipelines that do not use it dump, and hash, as before.
        data = handler(self)
        if isinstance(data, dict) and not self.strict:
            data.pop("strict", None)
        return data


class RetrySpec(Strict):
    """How often a failed task is tried in all, and the wait before the second try.

    The wait doubles for each further try, up to a day.
    """

    attempts: Annotated[int, Field(ge=1, le=100)] = 1
    backoff_seconds: Annotated[float, Field(ge=0, le=MAX_BACKOFF, allow_inf_nan=False)] = 0.0


class CacheSpec(Strict):
    """Step caching: a task whose definition, code, parameters and fetched files are those
    of an earlier successful run is not run again; its results are restored.

    ``version`` is part of the key (change it to invalidate by hand); ``ttl_seconds`` bounds
    how old an entry may be; ``ignore`` names parameters that do not change the result.
    """

    version: str = ""
    ttl_seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    ignore: list[Annotated[str, Field(pattern=IDENTIFIER)]] = Field(default_factory=list)


#: ``cache: true``, ``cache: {version: ...}``, ``cache: false`` (never, whatever the default).
Cache = bool | CacheSpec | None


def _without_unset_cache(data: Any) -> Any:
    """Pipelines that do not use caching dump, and hash, as before it existed."""
    if isinstance(data, dict) and data.get("cache") is None:
        data.pop("cache", None)
    return data


#: How a diagram draws a node: a plain step, an end, a fan-out over items, a fork into
#: concurrent branches, a choice of one branch, a repetition.
Shape = Literal["step", "end", "fan", "fork", "choice", "repeat"]
#: What the step path part after a node names: a branch key, an item index, an iteration index.
Entry = Literal["branch", "item", "iteration"]


class NodeBase(Strict):
    """What every node kind answers about its shape. How a kind runs, replays and is
    entered lives in its module under ``conveyor.graph.kinds``, found by ``type``.

    The class variables are the kind's traits: validation, diagrams, the CLI, the UI and
    the Argo renderer read them instead of testing the kind's name, so that a new kind (a
    plugin's too) is described in one place.
    """

    #: How reaching this node ends its graph: True (success), False (fail), None (runs).
    ends: ClassVar[bool | None] = None
    #: Holds graphs and is recorded as a node of its own (status and info), not as attempts.
    composite: ClassVar[bool] = False
    #: What the path part after this node names (None: it has no steps inside).
    entry: ClassVar[Entry | None] = None
    #: The fields holding its subgraphs: "one" (a graph) or "keyed" (a mapping of graphs).
    subgraph_fields: ClassVar[dict[str, Literal["one", "keyed"]]] = {}
    #: How diagrams draw it.
    shape: ClassVar[Shape] = "step"
    #: Checks of the raw YAML that the model cannot express, by name (spec.validate's table).
    raw_checks: ClassVar[tuple[str, ...]] = ()
    #: Runs one of its keyed subgraphs, chosen at run time (its info says which), not all.
    chooses: ClassVar[bool] = False
    #: Runs a command of its own (attempts, logs, returns) rather than holding or ending a graph.
    runs_command: ClassVar[bool] = False
    #: ``module:Class`` of its behaviour (a :class:`conveyor.graph.kinds.Kind`), for kinds
    #: that plugins add; the built-in kinds are listed in ``conveyor.graph.kinds``.
    behaviour: ClassVar[str | None] = None

    description: str | None = None

    def following(self, succeeded: bool) -> str | None:
        """The step after this one: ``next`` on success, ``on_failure`` on failure."""
        return None

    def named_subgraphs(self) -> dict[str, Graph]:
        """The graphs this node holds, by the path part that enters them (a map: a label)."""
        return {}

    def subgraphs(self) -> list[Graph]:
        return list(self.named_subgraphs().values())

    def inner(self, key: str) -> Graph:
        """The graph a step path enters after this node with ``key`` (a branch or an item
        index); KeyError with a message if there is none."""
        raise KeyError(f"a {getattr(self, 'type', 'node')} step has no steps inside it")

    def returned(self) -> list[str]:
        """Names this node itself returns to the parameters (a task's ``returns``)."""
        return []


#: The ``type`` of a step that does not say.
DEFAULT_TYPE = "task"


def _node(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Validate a step as the model its ``type`` names (built-in, or a plugin's)."""
    if isinstance(value, NodeBase):
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError("model_type", "Input should be a mapping")
    tag = value.get("type", DEFAULT_TYPE)
    model = kindreg.lookup(tag) if isinstance(tag, str) else None
    if model is None:
        raise PydanticCustomError("union_tag_invalid", "unknown step type {tag}", {"tag": str(tag)})
    return model.model_validate(value)


class _OneOfKinds:
    """The JSON Schema of a step: one of the registered node models (``spec.schema`` adds
    their definitions)."""

    def __get_pydantic_json_schema__(self, core: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"oneOf": [{"$ref": f"#/$defs/{m.__name__}"} for m in kindreg.MODELS.values()]}


#: A step of any kind, validated as the model its ``type`` names and dumped as that model.
Node = SerializeAsAny[Annotated[NodeBase, WrapValidator(_node), _OneOfKinds()]]


class Linked(NodeBase):
    """A node followed by another: ``next`` on success, ``on_failure`` (if any) on failure."""

    next: Annotated[str, Field(min_length=1)]
    on_failure: str | None = None

    def following(self, succeeded: bool) -> str | None:
        return self.next if succeeded else self.on_failure


class Branching(Linked):
    """A node whose ``branches`` are entered by their key."""

    composite: ClassVar[bool] = True
    entry: ClassVar[Entry | None] = "branch"
    subgraph_fields: ClassVar[dict[str, Literal["one", "keyed"]]] = {"branches": "keyed"}

    branches: Annotated[dict[str, Graph], Field(min_length=1)]

    def named_subgraphs(self) -> dict[str, Graph]:
        return dict(self.branches)

    def inner(self, key: str) -> Graph:
        if key not in self.branches:
            raise KeyError(f"no branch '{key}' (branches: {', '.join(self.branches)})")
        return self.branches[key]


class TaskNode(Linked):
    """Runs one command: a python function, a shell command or a notebook."""

    runs_command: ClassVar[bool] = True
    raw_checks: ClassVar[tuple[str, ...]] = ("command", "returns", "catalog")

    type: Literal["task"] = "task"
    command_type: Literal["python", "shell", "notebook"] = "python"
    command: Annotated[str, Field(min_length=1)]
    returns: list[ReturnSpec] = Field(default_factory=list)
    catalog: CatalogSpec | None = None
    secrets: list[Annotated[str, Field(pattern=IDENTIFIER)]] = Field(default_factory=list)
    retry: RetrySpec | None = None
    timeout_seconds: Annotated[float, Field(gt=0, le=MAX_TIMEOUT, allow_inf_nan=False)] | None = None
    #: Per executor type: the settings themselves, or the name of an override defined in
    #: the run config's executor section (runnable's ``overrides: {argo: smaller}``), so
    #: that one pipeline takes each environment's sizes from that environment's config.
    overrides: dict[str, Override] = Field(default_factory=dict)
    cache: Cache = None

    def returned(self) -> list[str]:
        return [r.name for r in self.returns]

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _without_unset_cache(handler(self))

    @field_validator("returns", mode="before")
    @classmethod
    def _names_as_returns(cls, value: Any) -> Any:
        # `returns: [rows, score]` is shorthand for `[{name: rows}, {name: score}]`.
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value


class StubNode(Linked):
    """Does nothing and succeeds: a placeholder while a pipeline is being drawn.

    It takes any other keys (the command, returns or catalog the step will have, as
    runnable's stubs do): they are kept, and recorded in the run log, but not checked.
    """

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    type: Literal["stub"]


class SuccessNode(NodeBase):
    """Ends its graph in success (implicit as ``success`` when not declared)."""

    ends: ClassVar[bool | None] = True
    shape: ClassVar[Shape] = "end"
    type: Literal["success"]


class FailNode(NodeBase):
    """Ends its graph in failure (implicit as ``fail`` when not declared)."""

    ends: ClassVar[bool | None] = False
    shape: ClassVar[Shape] = "end"
    type: Literal["fail"]


class Graph(Strict):
    """A chain of steps from ``start_at`` to a success or fail node."""

    description: str | None = None
    start_at: Annotated[str, Field(min_length=1)]
    steps: Annotated[dict[str, Node], Field(min_length=1)]
    #: On the pipeline's ``dag``: the caching of every task that does not say otherwise.
    cache: Cache = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _without_unset_cache(handler(self))


class ParallelNode(Branching):
    """Runs every branch concurrently; fails if any branch fails."""

    shape: ClassVar[Shape] = "fork"
    type: Literal["parallel"]


class PartitionSpec(Strict):
    """Where a map's items come from when they are files: listed, then grouped.

    ``source`` is any fsspec URL or glob (``s3://bucket/prefix/**/*.tif``); ``parameter``
    names a parameter holding a list instead. ``count`` puts ``size`` items in a partition,
    ``bytes`` fills partitions up to ``target_bytes``, ``group-by`` keys partitions by the
    first capture group of ``pattern`` matched against each URL.
    """

    source: str | None = None
    parameter: Annotated[str, Field(pattern=IDENTIFIER)] | None = None
    strategy: Literal["count", "bytes", "group-by"] = "count"
    size: Annotated[int, Field(ge=1)] = 1000
    target_bytes: Annotated[int, Field(ge=1)] | None = None
    pattern: str | None = None
    storage_options: dict[str, object] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> PartitionSpec:
        if (self.source is None) == (self.parameter is None):
            raise ValueError(
                "give exactly one of 'source' (a URL or glob) and 'parameter' (a list parameter)"
            )
        if self.strategy == "bytes" and self.target_bytes is None:
            raise ValueError("strategy 'bytes' needs 'target_bytes'")
        if self.strategy == "group-by":
            if not self.pattern:
                raise ValueError("strategy 'group-by' needs 'pattern', a regex with a capture group")
            try:
                compiled = re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regex: {exc}") from None
            if compiled.groups < 1:
                raise ValueError("pattern needs a capture group: its first group is the partition key")
        return self


class MapNode(Linked):
    """Runs ``branch`` once per item of the list parameter ``iterate_on``, or once per
    partition of the files a ``partition`` spec lists."""

    composite: ClassVar[bool] = True
    entry: ClassVar[Entry | None] = "item"
    subgraph_fields: ClassVar[dict[str, Literal["one", "keyed"]]] = {"branch": "one"}
    shape: ClassVar[Shape] = "fan"
    raw_checks: ClassVar[tuple[str, ...]] = ("reducer",)

    type: Literal["map"]
    iterate_on: Annotated[str, Field(pattern=IDENTIFIER)] | None = None
    partition: PartitionSpec | None = None
    iterate_as: Annotated[str, Field(pattern=IDENTIFIER)]
    max_parallelism: Annotated[int, Field(ge=1)] | None = None
    reducer: str | None = None
    on_item_failure: Literal["fail", "continue"] = "fail"
    incremental: bool = False
    branch: Graph

    def named_subgraphs(self) -> dict[str, Graph]:
        source = self.iterate_on or (
            (self.partition.source or self.partition.parameter) if self.partition else None
        )
        return {f"each {self.iterate_as} in {source}": self.branch}

    def inner(self, key: str) -> Graph:
        if not (key.isascii() and key.isdigit()):
            raise KeyError(f"'{key}' is not an item index")
        return self.branch

    @model_validator(mode="after")
    def _items(self) -> MapNode:
        if (self.iterate_on is None) == (self.partition is None):
            raise ValueError("a map needs exactly one of 'iterate_on' (a list parameter) and 'partition'")
        if self.incremental and self.partition is None:
            raise ValueError(
                "'incremental: true' needs a 'partition' spec: it tracks files by URL and version"
            )
        return self


class LoopNode(Linked):
    """Runs ``branch`` again and again (do-while): each iteration sees the parameters the
    one before left, and its index as ``index_as``. It stops after an iteration that sets
    the boolean parameter ``break_on`` to true, or after ``max_iterations`` iterations:
    a success, or with ``on_max_iterations: fail`` a failure."""

    composite: ClassVar[bool] = True
    entry: ClassVar[Entry | None] = "iteration"
    subgraph_fields: ClassVar[dict[str, Literal["one", "keyed"]]] = {"branch": "one"}
    shape: ClassVar[Shape] = "repeat"

    type: Literal["loop"]
    branch: Graph
    max_iterations: Annotated[int, Field(ge=1, le=MAX_ITERATIONS)]
    break_on: Annotated[str, Field(pattern=IDENTIFIER)]
    index_as: Annotated[str, Field(pattern=IDENTIFIER)]
    on_max_iterations: Literal["succeed", "fail"] = "succeed"

    def named_subgraphs(self) -> dict[str, Graph]:
        return {f"repeat until {self.break_on} (at most {self.max_iterations})": self.branch}

    def inner(self, key: str) -> Graph:
        if not (key.isascii() and key.isdigit()):
            raise KeyError(f"'{key}' is not an iteration index")
        return self.branch


class ConditionalNode(Branching):
    """Runs the branch keyed by the value of ``parameter``."""

    shape: ClassVar[Shape] = "choice"
    chooses: ClassVar[bool] = True
    type: Literal["conditional"]
    parameter: Annotated[str, Field(pattern=IDENTIFIER)]


for _model in (TaskNode, StubNode, ParallelNode, MapNode, ConditionalNode, LoopNode, SuccessNode, FailNode):
    kindreg.register(_model)
#: Every node model by its ``type`` (plugins' kinds are added when first needed).
NODE_TYPES = kindreg.MODELS


def walk_nodes(graph: Graph) -> Iterator[NodeBase]:
    """Every node of ``graph`` and of the graphs nested in it, in declaration order."""
    for node in graph.steps.values():
        yield node
        for sub in node.subgraphs():
            yield from walk_nodes(sub)


def returned_names(graph: Graph) -> list[str]:
    """Every name a graph's tasks return, nested ones included, in declaration order (what a
    map reduces)."""
    names: dict[str, None] = {}
    for node in walk_nodes(graph):
        names.update((name, None) for name in node.returned())
    return list(names)


IMPLICIT = {"success": SuccessNode(type="success"), "fail": FailNode(type="fail")}


def step_in(graph: Graph, name: str) -> NodeBase | None:
    """The node ``name`` names in ``graph``: a declared step, or an implicit terminal."""
    node = graph.steps.get(name)
    if node is None:
        return IMPLICIT.get(name)
    return node


class Pipeline(Strict):
    """A whole pipeline: one top-level graph."""

    dag: Graph

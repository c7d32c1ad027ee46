"""The node kinds a pipeline may use, by ``type``: the built-in models, and those plugins
declare under the entry point group ``conveyor.kinds`` (``name = "pkg.module:NodeModel"``).

Plugins are looked up only when a pipeline names a type that is not built in (or when the
whole list is wanted, for an error message or the JSON Schema), so that a pipeline of
built-in kinds never pays for scanning the installed distributions.
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar

from pydantic import BaseModel

from conveyor.errors import ConveyorError

GROUP = "conveyor.kinds"
#: Every known node model by its ``type``.
ModelT = TypeVar("ModelT", bound=BaseModel)
MODELS: dict[str, type[BaseModel]] = {}
_loaded = False
_lock = threading.Lock()


class KindPluginError(ConveyorError):
    """A ``conveyor.kinds`` entry point does not name a usable node model."""

    hint = "fix or uninstall the plugin that declares it"


def type_of(model: type[BaseModel]) -> str:
    """The ``type`` a node model answers to (the default of its ``type`` field)."""
    field = model.model_fields.get("type")
    args: list[object] = list(getattr(field.annotation, "__args__", ())) if field is not None else []
    if len(args) != 1 or not isinstance(args[0], str):
        raise KindPluginError(f'{model.__name__} has no `type: Literal["..."]` field naming its kind')
    return str(args[0])


def register(model: type[ModelT]) -> type[ModelT]:
    """Make ``model`` the node model of its ``type``; returns it (usable as a decorator)."""
    MODELS[type_of(model)] = model
    return model


def load_plugins() -> None:
    """Register the node models of every ``conveyor.kinds`` entry point, once."""
    from importlib.metadata import entry_points  # lazily: a few ms most runs never need

    global _loaded
    with _lock:
        if _loaded:
            return
        # Found first, published at once: a broken plugin leaves nothing half registered (and
        # is said again on the next look), and no reader sees the search done before it is.
        found: dict[str, type[BaseModel]] = {}
        for point in entry_points(group=GROUP):
            try:
                model = point.load()
            except Exception as exc:  # a plugin's import error is the plugin's, said in one line
                raise KindPluginError(
                    f"the node kind plugin {point.name} = {point.value} cannot be loaded: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise KindPluginError(
                    f"the node kind plugin {point.name} = {point.value} names "
                    f"{getattr(model, '__name__', repr(model))}, which is not a node model "
                    "(a pydantic model subclassing conveyor.spec.models.Linked, with a "
                    '`type: Literal["..."]` field)'
                )
            if type_of(model) != point.name:
                raise KindPluginError(
                    f"entry point {point.name} = {point.value} names a model of type {type_of(model)!r}"
                )
            found.setdefault(point.name, model)
        for name, model in found.items():
            MODELS.setdefault(name, model)
        _loaded = True


def reload_plugins() -> None:
    """Look at the entry points again (a test that installed a plugin after start-up)."""
    global _loaded
    with _lock:
        _loaded = False
    load_plugins()


def lookup(tag: str) -> Any | None:
    """The node model of ``tag``, looking at plugins if it is not built in."""
    model = MODELS.get(tag)
    if model is None and not _loaded:
        load_plugins()
        model = MODELS.get(tag)
    return model


def known() -> list[str]:
    """Every type a pipeline may use, plugins' included."""
    load_plugins()
    return list(MODELS)

"""Parameters in (by argument name, cast to annotations) and returns out (in order)."""

from __future__ import annotations

import builtins
import functools
import importlib
import inspect
import json
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from conveyor.spec.models import ReturnSpec
from conveyor.spec.validate import is_lambda


class StepInputError(Exception):
    """The step cannot be called as written: a missing parameter, a bad cast, a bad return."""


#: Functions already found, by dotted name, with the module they came from: a map's items
#: name the same function 100,000 times. An entry holds only while that module is still
#: the one ``sys.modules`` has and still has that function under that name (a notebook
#: that reloads or redefines it, a test that patches it, gets the new one).
_RESOLVED: dict[str, tuple[ModuleType, str, Callable[..., Any]]] = {}


def resolve_callable(dotted: str) -> Callable[..., Any]:
    """Import ``pkg.module.function``; say clearly what could not be found and where.

    A Python ``lambda`` expression (a map's ``reducer: "lambda *x: max(x)"``, as runnable
    writes them) is evaluated instead: the pipeline's author wrote it, as they wrote the
    functions named by dotted paths.
    """
    known = _RESOLVED.get(dotted)
    if known is not None:
        module, name, found = known
        if sys.modules.get(module.__name__) is module and getattr(module, name, None) is found:
            return known[2]
    if is_lambda(dotted):
        return typing.cast(Callable[..., Any], eval(dotted, {"__builtins__": builtins}))
    module_name, _, attr = dotted.rpartition(".")
    try:
        # import_module (not a bare sys.modules lookup) waits while another thread is still
        # executing the module, so concurrent map items never see it half-initialised.
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StepInputError(
            f"cannot import module '{module_name}' for '{dotted}': {exc}. "
            "It must be importable from the working directory or the Python path."
        ) from None
    except SystemExit as exc:  # a script's module-level sys.exit(), run by importing it
        raise StepInputError(
            f"module '{module_name}' called sys.exit({exc.code!r}) while being imported for "
            f"'{dotted}': a script that runs its pipeline at module level must guard it with "
            "if __name__ == '__main__':"
        ) from None
    target = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise StepInputError(f"module '{module_name}' has no '{attr}' (from '{dotted}')") from None
    if not callable(target):
        raise StepInputError(f"'{dotted}' is not a function")
    if "." not in attr:  # a module's own attribute (checked as above on each use)
        _RESOLVED[dotted] = (module, attr, target)
    return typing.cast(Callable[..., Any], target)


@functools.lru_cache(maxsize=512)
def _signature(func: Callable[..., Any]) -> tuple[inspect.Signature, dict[str, object]]:
    try:
        hints = typing.get_type_hints(func)
    except Exception:
        hints = {}
    return inspect.signature(func), hints


@functools.lru_cache(maxsize=512)
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def _cast(name: str, value: object, annotation: object) -> object:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return value
    if isinstance(annotation, type) and isinstance(value, annotation) and annotation is not bool:
        return value
    try:
        adapter = _adapter(annotation)
    except TypeError:  # unhashable or unsupported annotation: pass the value through
        return value
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise StepInputError(
            f"parameter '{name}' = {value!r:.80} cannot be cast to {annotation}: {problem['msg']}"
        ) from None


@dataclass(frozen=True)
class _Binding:
    """How a function takes its parameters, worked out once per function (a map calls the
    same one for every item): each named argument with the annotation to cast to (None:
    taken as it is) and whether it must be given; ``**kwargs``; an ``argparse.Namespace``."""

    arguments: tuple[tuple[str, object, bool], ...]
    takes_rest: bool
    namespace: str | None


def _is_namespace(annotation: object) -> bool:
    """``argparse.Namespace``: only a module that imported argparse can name it, so argparse
    is not imported here for the many that did not (a few ms of every run's start)."""
    argparse = sys.modules.get("argparse")
    return argparse is not None and annotation is argparse.Namespace


@functools.lru_cache(maxsize=512)
def _binding(func: Callable[..., Any]) -> _Binding:
    signature, hints = _signature(func)
    arguments: list[tuple[str, object, bool]] = []
    takes_rest = False
    namespace: str | None = None
    for name, param in signature.parameters.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            takes_rest = True
            continue
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        annotation = hints.get(name, param.annotation)
        if namespace is None and _is_namespace(annotation):
            namespace = name
            continue
        plain = annotation is inspect.Parameter.empty or annotation is Any
        arguments.append((name, None if plain else annotation, param.default is inspect.Parameter.empty))
    return _Binding(tuple(arguments), takes_rest, namespace)


def bind_arguments(func: Callable[..., Any], params: Mapping[str, object]) -> dict[str, object]:
    """Pick the parameters ``func`` asks for, by name, cast to its annotations.

    ``**kwargs`` gets the parameters no argument names; so does an argument annotated
    ``argparse.Namespace``, as the namespace's attributes (runnable's convention, for
    functions written for a command line's ``args``).
    """
    binding = _binding(func)
    kwargs: dict[str, object] = {}
    for name, annotation, required in binding.arguments:
        if name in params:
            value = params[name]
            kwargs[name] = value if annotation is None else _cast(name, value, annotation)
        elif required:
            known = ", ".join(sorted(params)) or "none"
            raise StepInputError(
                f"the function needs parameter '{name}', which is not set (parameters: {known}). "
                "Set it with -p params.yaml, CONVEYOR_PRM_" + name + ", or return it from an earlier step"
            )
    if binding.namespace is None and not binding.takes_rest:
        return kwargs
    rest = {name: value for name, value in params.items() if name not in kwargs}
    if binding.namespace is not None:
        import argparse  # the function's module imported it (see _is_namespace)

        namespace = binding.namespace
        kwargs[namespace] = argparse.Namespace(**{k: v for k, v in rest.items() if k != namespace})
    if binding.takes_rest:
        for name, value in rest.items():
            kwargs.setdefault(name, value)
    return kwargs


class ItemBinder:
    """:func:`bind_arguments` for a function called once per map item with one parameter
    changing (``varying``, the map's ``iterate_as``): how it takes its arguments is worked
    out once. ``__call__`` gives the keyword arguments for one value, exactly as
    ``bind_arguments`` would with ``params`` and that value: an argument passed as it is
    (or whose cast gives back the very value) is bound once; one whose cast makes a new
    object (a list, a model) is cast for each item, as each item's call gets its own. A
    function taking ``**kwargs`` or a namespace, or missing a parameter, or whose cast
    fails, binds each item in full: the same result, the same error."""

    def __init__(self, func: Callable[..., Any], params: Mapping[str, object], varying: str) -> None:
        self.func, self.params, self.varying = func, params, varying
        binding = _binding(func)
        self._fixed: dict[str, object] | None = None
        #: Arguments cast for each item: (name, value, annotation).
        self._cast: tuple[tuple[str, object, object], ...] = ()
        self._takes = False
        self._annotation: object = None
        if binding.namespace is not None or binding.takes_rest:
            return
        fixed: dict[str, object] = {}
        each: list[tuple[str, object, object]] = []
        for name, annotation, required in binding.arguments:
            if name == varying:
                self._takes, self._annotation = True, annotation
            elif name in params:
                value = params[name]
                if annotation is None:
                    fixed[name] = value
                    continue
                try:
                    cast = _cast(name, value, annotation)
                except Exception:
                    return  # every item fails with it: bound in full, each says so
                if cast is value:
                    fixed[name] = value
                else:
                    each.append((name, value, annotation))
            elif required:
                return
        self._fixed, self._cast = fixed, tuple(each)

    def __call__(self, value: object) -> dict[str, object]:
        fixed = self._fixed
        if fixed is None:
            params = dict(self.params)
            params[self.varying] = value
            return bind_arguments(self.func, params)
        kwargs = fixed.copy()
        for name, given, annotation in self._cast:
            kwargs[name] = _cast(name, given, annotation)
        if self._takes:
            annotation = self._annotation
            kwargs[self.varying] = value if annotation is None else _cast(self.varying, value, annotation)
        return kwargs


#: The deepest nesting of lists and mappings a JSON return may have (as YAML inputs).
MAX_VALUE_DEPTH = 100


def _depth(value: Any) -> int:
    """How deeply lists and mappings nest in ``value``, counted without recursion."""
    if not isinstance(value, dict | list | tuple):
        return 0
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_VALUE_DEPTH:
            break
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((v, depth + 1) for v in item)
    return deepest


#: Returned types JSON writes as they are (exact types: a subclass may not encode alike).
_SCALARS = frozenset({str, int, float, bool, type(None)})


def to_json_value(name: str, value: Any) -> Any:
    """A JSON copy of a returned value (pydantic models dumped): what the run log keeps and
    what the next steps get are then the same plain JSON, read from one encoding of it (a
    value that changes once encoded, or a dump that is not JSON, cannot make them differ).
    Whatever goes wrong on the way (a serializer raising, even ``SystemExit``; a value that
    is not JSON) is the attempt's failure (:class:`StepInputError`), never the run's."""
    if type(value) in _SCALARS:  # most returns: nothing to check
        return value
    try:
        return _json_ready(name, value)
    except (StepInputError, KeyboardInterrupt):
        raise
    except BaseException as exc:  # a model's serializer, an object's method, raising anything
        raise StepInputError(f"return '{name}' could not be made JSON: {type(exc).__name__}: {exc}") from None


def _json_ready(name: str, value: Any) -> Any:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        value = value.tolist()  # numpy scalars and arrays: their Python values
    if _depth(value) > MAX_VALUE_DEPTH:
        raise StepInputError(
            f"return '{name}' nests deeper than {MAX_VALUE_DEPTH} levels; "
            "declare it with kind: object to keep it pickled in the catalog"
        )
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        raise StepInputError(
            f"return '{name}' is a {type(value).__name__}, which is not JSON; "
            "declare it with kind: object to keep it pickled in the catalog"
        ) from None
    return json.loads(text)


def map_returns(value: object, returns: list[ReturnSpec]) -> dict[str, object]:
    """Match a function's return value onto the declared ``returns``, in order."""
    if not returns:
        return {}
    if len(returns) == 1:
        return {returns[0].name: value}
    if not isinstance(value, tuple | list) or len(value) != len(returns):
        names = ", ".join(r.name for r in returns)
        got = f"{len(value)} values" if isinstance(value, tuple | list) else type(value).__name__
        raise StepInputError(f"the function must return {len(returns)} values ({names}), got {got}")
    return {spec.name: item for spec, item in zip(returns, value, strict=True)}

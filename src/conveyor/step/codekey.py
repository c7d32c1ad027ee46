"""The code a python step reaches, for its cache key: its module and the user's modules that
module imports, transitively.

A step's result depends on its helpers as much as on its own function: editing a helper
module must miss, and on a shared catalog nobody may reuse another's entry by submitting the
same step module beside a helper of her own. Imports are found by parsing (``ast``: nothing
is imported to find them, lazy imports inside functions included) and resolved like the
import system does (``importlib.util.find_spec``; a submodule of a package not imported yet
through its parent's search path, so that resolving imports nothing either). The user's code
is what lies outside the interpreter's prefixes and site-packages and outside conveyor:
the standard library and installed packages are not hashed (their versions are the
environment's, not the step's).

Parsing and resolving are done once per process per module version (a module's size and
modification time); a key then costs one ``stat`` per module reached.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.machinery
import importlib.util
import os
import site
import sys
import sysconfig
import threading
from functools import cache
from importlib.machinery import ModuleSpec
from pathlib import Path

_lock = threading.Lock()
#: CPython 3.11's AST constructor keeps its recursion depth in per-interpreter state, so two
#: threads parsing at once (a map's branches computing their keys) can fail with
#: "SystemError: AST constructor recursion depth mismatch" (seen in CI; python/cpython#106905
#: tells of the same error in threaded programs): parse one at a time, and once more if another
#: thread of the process parsed meanwhile.
_parse_lock = threading.Lock()
#: (path, mtime, size) -> (sha256 of the file, absolute names of the modules it imports)
_parsed: dict[tuple[str, int, int], tuple[str, tuple[str, ...]]] = {}
#: module name -> (its file, whether it is a package), or None: not the user's code, or unknown.
_located: dict[str, tuple[str, bool] | None] = {}


@cache
def _not_user_roots() -> tuple[str, ...]:
    """Directories whose modules are not the user's: the interpreter's, site-packages, conveyor."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots.update(p for p in sysconfig.get_paths().values() if p)
    roots.update(site.getsitepackages())
    roots.add(site.getusersitepackages())
    roots.add(str(Path(__file__).resolve().parents[1]))  # conveyor itself
    return tuple(os.path.join(os.path.realpath(r), "") for r in roots if r)


def is_user_file(path: str) -> bool:
    """Whether the module file at ``path`` is the user's code (see the module docstring)."""
    real = os.path.realpath(path)
    return not any(real.startswith(root) for root in _not_user_roots())


def _spec(name: str) -> ModuleSpec | None:
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__spec__", None)
    parent = name.rpartition(".")[0]
    if not parent or parent in sys.modules:
        return importlib.util.find_spec(name)
    outer = _spec(parent)  # not imported yet: look in its search path without importing it
    if outer is None or not outer.submodule_search_locations:
        return None
    return importlib.machinery.PathFinder.find_spec(name, list(outer.submodule_search_locations))


def locate(name: str) -> tuple[str, bool] | None:
    """The user's module ``name``: its file and whether it is a package; None if it is not
    the user's code or cannot be found (remembered for the process)."""
    with _lock:
        if name in _located:
            return _located[name]
    try:
        spec = _spec(name)
    except Exception:  # a finder of an installed package may fail its own way: not found
        spec = None
    found = None
    origin = spec.origin if spec is not None else None
    if spec is not None and origin and spec.has_location and os.path.isfile(origin) and is_user_file(origin):
        found = (origin, spec.submodule_search_locations is not None)
    with _lock:
        _located[name] = found
    return found


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str | None:
    """The module a ``from ... import`` names, relative ones resolved against ``module``."""
    if not node.level:
        return node.module
    package = module if is_package else module.rpartition(".")[0]
    parts = package.split(".") if package else []
    if node.level - 1 >= len(parts):
        return None  # beyond the top-level package: Python refuses it too
    base = ".".join(parts[: len(parts) - (node.level - 1)])
    return f"{base}.{node.module}" if node.module else base


def imported(source: bytes, module: str, is_package: bool) -> tuple[str, ...]:
    """Absolute names of every module ``source`` may import (each dotted prefix too, and for
    ``from X import y``, ``X.y`` in case ``y`` is a submodule)."""
    try:
        with _parse_lock:
            try:
                tree = ast.parse(source)
            except SystemError:
                tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ()
    names: set[str] = set()
    for node in ast.walk(tree):
        found: list[str] = []
        if isinstance(node, ast.Import):
            found = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            if base:
                found = [base, *(f"{base}.{a.name}" for a in node.names if a.name != "*")]
        for name in found:
            parts = name.split(".")
            names.update(".".join(parts[: n + 1]) for n in range(len(parts)))
    return tuple(sorted(names))


def _read(path: str, module: str, is_package: bool) -> tuple[str, tuple[str, ...]]:
    info = os.stat(path)
    stamp = (path, info.st_mtime_ns, info.st_size)
    with _lock:
        known = _parsed.get(stamp)
    if known is None:
        with open(path, "rb") as handle:
            data = handle.read()
        names = imported(data, module, is_package) if path.endswith(".py") else ()
        known = (hashlib.sha256(data).hexdigest(), names)
        with _lock:
            _parsed[stamp] = known
    return known


def reached(module: str, path: str) -> dict[str, str]:
    """sha256 of the source of ``module`` (at ``path``) and of every module of the user's
    it imports, transitively, by module name."""
    is_package = os.path.basename(path) == "__init__.py"
    hashes: dict[str, str] = {}
    pending: list[tuple[str, str, bool]] = [(module, path, is_package)]
    while pending:
        name, file, package = pending.pop()
        if name in hashes:
            continue
        digest, names = _read(file, name, package)
        hashes[name] = digest
        for other in names:
            if other not in hashes and (where := locate(other)) is not None:
                pending.append((other, *where))
    return hashes


def code_digest(module: str, path: str) -> str:
    """One sha256 over :func:`reached` (names and contents)."""
    text = "\n".join(f"{name} {digest}" for name, digest in sorted(reached(module, path).items()))
    return hashlib.sha256(text.encode()).hexdigest()

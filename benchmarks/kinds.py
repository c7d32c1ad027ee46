"""How much of the code a node kind touches: the figures issue 21 point 1 set out to change.

Usage: python benchmarks/kinds.py [ROOT]   (default: this checkout)

Prints, for ``ROOT/src/conveyor`` (Python, measured with ast) and ``ui/static/app.js``
(string literals, by regex):

- modules that name a kind: a string constant (not a docstring) equal to a kind's ``type``
  (``task``, ``stub``, ``parallel``, ``map``, ``conditional``, ``loop``). ``success`` and
  ``fail`` are counted apart: they are also the names of the implicit end steps, which
  the pipeline format itself spells (``next: success``);
- string-keyed maps of ``Any``: ``dict[str, Any]`` and the spellings that hide it
  (``Dict``/``Mapping``/``MutableMapping`` of ``[str, Any]``, and every use of a name
  assigned one of them, such as ``JSON = dict[str, Any]``), so renaming cannot lower it;
- string-keyed reads of a record's info: ``info["x"]``, ``info.get("x")``, ``"x" in info``
  on any name or attribute called ``info``, outside ``graph/kinds/``;
- the files that name the toy kind of the plugin test (``retry-until``), outside ``src``.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
KINDS = {"task", "stub", "parallel", "map", "conditional", "loop"}
TERMINALS = {"success", "fail"}
JS_STRING = re.compile(r"""(["'])([a-z_-]+)\1""")
TOY = "retry-until"


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the constants that are docstrings (not kind names, whatever they say)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _is_info(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "info") or (
        isinstance(node, ast.Attribute) and node.attr == "info"
    )


def _str(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def info_reads(tree: ast.AST) -> int:
    """String-keyed reads of something called ``info``."""
    count = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_info(node.value) and _str(node.slice):
            count += isinstance(node.ctx, ast.Load)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and _is_info(node.func.value)
            and node.args
            and _str(node.args[0])
        ):
            count += 1
        elif isinstance(node, ast.Compare) and _str(node.left):
            count += any(
                isinstance(op, ast.In | ast.NotIn) and _is_info(right)
                for op, right in zip(node.ops, node.comparators, strict=True)
            )
    return count


ANY_MAPS = {"dict", "Dict", "Mapping", "MutableMapping"}


def _any_map(node: ast.AST) -> bool:
    """``dict[str, Any]`` or one of its spellings."""
    if not (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple)):
        return False
    base = node.value.attr if isinstance(node.value, ast.Attribute) else getattr(node.value, "id", "")
    parts = node.slice.elts
    return (
        base in ANY_MAPS
        and len(parts) == 2
        and getattr(parts[0], "id", "") == "str"
        and (getattr(parts[1], "id", "") == "Any" or getattr(parts[1], "attr", "") == "Any")
    )


def any_aliases(tree: ast.AST) -> set[str]:
    """Names a module assigns a ``dict[str, Any]`` spelling to (``JSON = dict[str, Any]``)."""
    names = set()
    for node in ast.walk(tree):
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if value is not None and _any_map(value):
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def any_maps(tree: ast.AST, aliases: set[str]) -> int:
    """Spellings of ``dict[str, Any]`` plus loads of the aliases (definitions not counted)."""
    count = 0
    for node in ast.walk(tree):
        alias = isinstance(node, ast.Name) and node.id in aliases and isinstance(node.ctx, ast.Load)
        count += _any_map(node) or alias
    # a string annotation (``"dict[str, Any]"``) is not parsed by ast: count its text too
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            count += node.value.count("[str, Any]")
    return count


def kind_names(tree: ast.AST, names: set[str]) -> int:
    """String constants equal to one of ``names``, docstrings aside."""
    skip = _docstrings(tree)
    return sum(
        1
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in names and id(node) not in skip
    )


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent
    package = root / "src" / "conveyor"
    named: Counter[str] = Counter()
    ends: Counter[str] = Counter()
    reads: Counter[str] = Counter()
    anys: Counter[str] = Counter()
    trees = {path: ast.parse(path.read_text()) for path in sorted(package.rglob("*.py"))}
    aliases = set().union(*(any_aliases(tree) for tree in trees.values()))
    for path, tree in trees.items():
        name = str(path.relative_to(package))
        named[name] = kind_names(tree, KINDS)
        ends[name] = kind_names(tree, TERMINALS)
        anys[name] = any_maps(tree, aliases)
        if not name.startswith("graph/kinds/"):
            reads[name] = info_reads(tree)
    for path in sorted(package.rglob("*.js")):
        literals = [m.group(2) for m in JS_STRING.finditer(path.read_text())]
        name = str(path.relative_to(package))
        named[name] = sum(lit in KINDS for lit in literals)
        ends[name] = sum(lit in TERMINALS for lit in literals)
    toy = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if ".venv" not in p.parts
        and not p.is_relative_to(root / "src")
        and p.name != Path(__file__).name
        and TOY in p.read_text()
    )

    def table(title: str, counts: Counter[str]) -> None:
        where = {k: v for k, v in counts.items() if v}
        print(f"{title}: {sum(where.values())} in {len(where)} modules")
        for module, count in sorted(where.items()):
            print(f"  {count:3d}  {module}")

    print(f"source: {package}")
    table("kind names (task stub parallel map conditional loop)", named)
    table("end-step names (success fail; also step names of the format)", ends)
    print(f"aliases of dict[str, Any] counted with it: {sorted(aliases) or 'none'}")
    table("dict[str, Any] (all spellings and alias uses)", anys)
    table("string-keyed info reads outside graph/kinds", reads)
    print(f"files naming the toy kind '{TOY}' outside src: {len(toy)}" + "".join(f"\n  {t}" for t in toy))
    src_toy = [p for p in package.rglob("*") if p.is_file() and TOY in p.read_text(errors="ignore")]
    print(f"files under src naming it: {len(src_toy)}")


if __name__ == "__main__":
    main()

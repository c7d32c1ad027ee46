"""Structure figures for a source tree: what the one-meaning redesign set out to change.

Usage: python benchmarks/structure.py [SRC]   (default: src of this checkout)

Prints: ``isinstance`` checks against pipeline node classes and the modules they sit in;
occurrences of ``dict[str, Any]``; public docstring coverage (public module-level classes
and functions, and public methods of public classes, measured with ast); import cycles
inside the package (grimp, the engine of import-linter).
"""

from __future__ import annotations

import ast
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
NODE_CHECK = re.compile(
    r"isinstance\([^)]*\b(TaskNode|StubNode|ParallelNode|MapNode|ConditionalNode|SuccessNode|FailNode|Linked|NodeBase)\b"
)


def docstrings(tree: ast.Module) -> tuple[int, int]:
    """(public definitions, those with a docstring)."""
    total = documented = 0

    def count(node: ast.AST) -> None:
        nonlocal total, documented
        total += 1
        documented += ast.get_docstring(node) is not None  # type: ignore[arg-type]

    for node in tree.body:
        if isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
        ) and not node.name.startswith("_"):
            count(node)
            if isinstance(node, ast.ClassDef):
                for member in node.body:
                    if isinstance(
                        member, ast.FunctionDef | ast.AsyncFunctionDef
                    ) and not member.name.startswith("_"):
                        count(member)
    return total, documented


def inherited_coverage(src: Path, package: Path) -> tuple[int, int]:
    """Public methods counted as documented when ``inspect.getdoc`` finds a docstring, as
    documentation tools do: an override of a documented interface method inherits its text."""
    import importlib
    import inspect

    total = documented = 0
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text())
        module_name = ".".join(path.relative_to(src).with_suffix("").parts)
        if path.name == "__main__.py" or "migrations" in path.parts:  # these run when imported
            continue
        try:
            module = importlib.import_module(module_name)
        except Exception:  # an optional extra that is not installed
            continue
        for node in tree.body:
            if not isinstance(
                node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
            ) or node.name.startswith("_"):
                continue
            total += 1
            documented += ast.get_docstring(node) is not None
            if isinstance(node, ast.ClassDef):
                cls = getattr(module, node.name, None)
                for member in node.body:
                    if isinstance(
                        member, ast.FunctionDef | ast.AsyncFunctionDef
                    ) and not member.name.startswith("_"):
                        total += 1
                        documented += bool(inspect.getdoc(getattr(cls, member.name, None)))
    return total, documented


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent / "src"
    package = src / "conveyor"
    checks: Counter[str] = Counter()
    dict_any = 0
    total = documented = 0
    for path in sorted(package.rglob("*.py")):
        text = path.read_text()
        name = str(path.relative_to(src))
        checks[name] += len(NODE_CHECK.findall(text))
        dict_any += text.count("dict[str, Any]")
        t, d = docstrings(ast.parse(text))
        total, documented = total + t, documented + d
    sys.path[:0] = [str(src), str(HERE.parent / "tests")]
    from support.imports import import_cycles

    cycles = import_cycles("conveyor")
    where = {k: v for k, v in checks.items() if v}
    print(f"source: {src}")
    print(f"isinstance(..., <node class>): {sum(where.values())} in {len(where)} modules")
    for module, count in sorted(where.items()):
        print(f"  {count:3d}  {module}")
    print(f"dict[str, Any]: {dict_any}")
    print(f"public docstrings (own): {documented}/{total} = {documented / max(total, 1):.0%}")
    t, d = inherited_coverage(src, package)
    print(f"public docstrings (with inherited, as inspect.getdoc): {d}/{t} = {d / max(t, 1):.0%}")
    print(
        f"import cycles inside the package: {len(cycles)}" + "".join(f"\n  {' <-> '.join(c)}" for c in cycles)
    )


if __name__ == "__main__":
    main()

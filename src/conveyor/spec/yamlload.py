"""Safe YAML loading that remembers where every value came from.

PyYAML's safe loader is used to compose the node tree; the tree is then turned into plain
Python data here so that we can (a) record the line of every key and value, (b) report
duplicate keys instead of silently keeping the last one, and (c) refuse alias bombs, whose
expansion is far larger than the document itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from conveyor.spec.errors import Issue, PathPart, SpecError

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
# libyaml's parser (when PyYAML has it) composes the same nodes, with marks, many times faster.
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass
class Located:
    """Data loaded from YAML with the line of each path in it."""

    data: Any
    file: str | None
    lines: dict[tuple[PathPart, ...], int] = field(default_factory=dict)
    # Problems that still let the document load (duplicate keys): reported with the rest.
    issues: list[Issue] = field(default_factory=list)

    def line_of(self, path: tuple[PathPart, ...]) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    def issue(self, path: tuple[PathPart, ...], message: str, **kw: Any) -> Issue:
        return Issue(message=message, path=path, file=self.file, line=self.line_of(path), **kw)


class _Converter:
    def __init__(self, file: str | None, distinct: int) -> None:
        self.file = file
        self.loader = yaml.SafeLoader("")
        self.lines: dict[tuple[PathPart, ...], int] = {}
        self.issues: list[Issue] = []
        # Alias bombs expand a few nodes into billions; allow generous reuse, refuse the rest.
        self.budget = 10 * distinct + 10_000

    def convert(self, node: yaml.Node, path: tuple[PathPart, ...]) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise SpecError(
                [
                    Issue(
                        "the document expands to far more values than it contains",
                        path=path,
                        file=self.file,
                        line=node.start_mark.line + 1,
                        expected="YAML whose aliases are reused a reasonable number of times",
                        found="an alias expansion bomb",
                        hint="remove the nested aliases (&anchor / *alias) that multiply",
                    )
                ],
                title="refused YAML",
            )
        if path not in self.lines:
            self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)

    def _pairs(self, node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
        """Key/value pairs with YAML merge keys (``<<: *base``) expanded; own keys win."""
        own: list[tuple[yaml.Node, yaml.Node]] = []
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key, value in node.value:
            if key.tag == MERGE_TAG:
                sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
                for source in sources:
                    if isinstance(source, yaml.MappingNode):
                        merged.extend(self._pairs(source))
            else:
                own.append((key, value))
        own_keys = {k.value for k, _ in own if isinstance(k, yaml.ScalarNode)}
        return own + [(k, v) for k, v in merged if k.value not in own_keys]

    def _mapping(self, node: yaml.MappingNode, path: tuple[PathPart, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in self._pairs(node):
            if not isinstance(key_node, yaml.ScalarNode):
                self.issues.append(
                    Issue(
                        "a key must be plain text",
                        path=path,
                        file=self.file,
                        line=key_node.start_mark.line + 1,
                        expected="a text key",
                        found="a list or mapping used as a key",
                    )
                )
                continue
            # Keys are kept as written: `true:` stays "true", `1:` stays "1".
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in out:
                self.issues.append(
                    Issue(
                        f"duplicate key '{key}'",
                        path=(*path, key),
                        file=self.file,
                        line=line,
                        expected="each key once per mapping",
                        found=f"'{key}' again (first on line {first_line[key]})",
                        hint="remove or rename one of them; YAML would keep only the last",
                    )
                )
                continue
            first_line[key] = line
            self.lines[(*path, key)] = line
            out[key] = self.convert(value_node, (*path, key))
        return out


def _count(node: yaml.Node | None, seen: set[int]) -> int:
    if node is None or id(node) in seen:
        return 0
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        return 1 + sum(_count(k, seen) + _count(v, seen) for k, v in node.value)
    if isinstance(node, yaml.SequenceNode):
        return 1 + sum(_count(v, seen) for v in node.value)
    return 1


def load_yaml_text(text: str, file: str | None = None) -> Located:
    """Parse YAML text into plain data plus a path -> line map; raise SpecError on problems."""
    try:
        root = yaml.compose(text, Loader=SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise SpecError(
            [
                Issue(
                    f"not valid YAML: {exc.problem or exc}",
                    file=file,
                    line=mark.line + 1 if mark else None,
                    expected="well-formed YAML",
                    found=(exc.context or "a syntax error"),
                    hint="check indentation and quoting near this line",
                )
            ],
            title="could not read YAML",
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError([Issue(f"not valid YAML: {exc}", file=file)], "could not read YAML") from None
    if root is None:
        return Located(data=None, file=file)
    converter = _Converter(file, _count(root, set()))
    try:
        data = converter.convert(root, ())
    except RecursionError:
        raise SpecError(
            [Issue("the document nests too deeply", file=file, hint="flatten the structure")],
            "refused YAML",
        ) from None
    return Located(data=data, file=file, lines=converter.lines, issues=converter.issues)


def load_yaml_file(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> Located:
    """Read a YAML file, refusing missing, unreadable or oversized files with a located error."""
    name = os.fspath(path)
    try:
        size = os.path.getsize(name)
        if size > max_bytes:
            raise SpecError(
                [
                    Issue(
                        "the file is too large",
                        file=name,
                        expected=f"at most {max_bytes:,} bytes",
                        found=f"{size:,} bytes",
                        hint="keep large data out of YAML: point to it through the catalog",
                    )
                ],
                "refused file",
            )
        with open(name, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise SpecError(
            [Issue("file not found", file=name, hint="check the path and working directory")],
            "could not read file",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Issue(f"cannot read the file: {exc}", file=name)], "could not read file") from None
    return load_yaml_text(text, file=name)

"""Safe YAML loading that remembers where every value came from.

PyYAML's safe loader is used to compose the node tree; the tree is then turned into plain
Python data here so that we can (a) record the line of every key and value, (b) report
duplicate keys instead of silently keeping the last one, and (c) refuse alias bombs, whose
expansion is far larger than the document itself.

Scalars are read by YAML 1.2's core schema, one rule for pipelines, configs, parameter
files and ``CONVEYOR_PRM_`` values: ``true``/``false`` are booleans, ``null``/``~`` null,
numbers numbers (``.inf`` and ``.nan`` too, which the models then refuse where a finite
number is needed), and everything else text: ``yes``, ``on`` and ``2024-01-31`` stay strings,
as YAML 1.2 says (PyYAML alone follows YAML 1.1). Tags (``!!python/name``, ``!custom``)
are refused with their location, and nesting is limited to :data:`MAX_DEPTH` levels.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any

import yaml

from conveyor.jsontypes import JSONObject, JSONScalar, JSONValue
from conveyor.spec.errors import Issue, PathPart, SpecError

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
#: The deepest nesting of mappings and lists accepted in any YAML input.
MAX_DEPTH = 100
_CORE_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_CORE_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_CORE_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_CORE_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


def _core(text: str) -> JSONScalar:
    """A plain scalar's value by YAML 1.2's core schema."""
    if _CORE_NULL.match(text):
        return None
    if _CORE_BOOL.match(text):
        return text.lower() == "true"
    if _CORE_INT.match(text):
        return (
            int(text, 8) if text.startswith("0o") else int(text, 16) if text.startswith("0x") else int(text)
        )
    if _CORE_FLOAT.match(text):
        lowered = text.lower()
        if lowered.endswith(".inf"):
            return float("-inf") if lowered.startswith("-") else float("inf")
        if lowered == ".nan":
            return float("nan")
        return float(text)
    return text


# libyaml's parser (when PyYAML has it) composes the same nodes, with marks, many times faster.
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass
class Located:
    """Data loaded from YAML with the line of each path in it.

    ``data`` is whatever is to be validated: JSON's values when read from YAML (see
    :func:`parse_yaml_text`), or the plain data the SDK builds; readers narrow it.
    """

    data: object
    file: str | None
    lines: dict[tuple[PathPart, ...], int] = field(default_factory=dict)
    # Problems that still let the document load (duplicate keys): reported with the rest.
    issues: list[Issue] = field(default_factory=list)
    #: Top-level keys whose value carries a YAML anchor (``branch: &branch ...``): values
    #: defined to be reused by alias elsewhere, not parts of the document's format.
    anchored: frozenset[str] = frozenset()

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

    def convert(self, node: yaml.Node, path: tuple[PathPart, ...]) -> JSONValue:
        if len(path) > MAX_DEPTH:  # deeper than measured: an alias that contains itself
            raise SpecError(
                [
                    Issue(
                        "the document nests too deeply (an alias that refers to itself?)",
                        path=path[:3],
                        file=self.file,
                        line=node.start_mark.line + 1,
                        expected=f"at most {MAX_DEPTH} levels of mappings and lists",
                        found=f"more than {MAX_DEPTH} levels",
                    )
                ],
                title="refused YAML",
            )
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
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: tuple[PathPart, ...]) -> JSONScalar:
        """A scalar by YAML 1.2's core schema. Tags written in the document are refused,
        but for ``!!str``, which only says "text"."""
        text = str(node.value)
        if not getattr(node, "style", None):  # plain (libyaml says "", PyYAML None): tagged or resolved?
            tagged = node.tag != self.loader.resolve(yaml.ScalarNode, text, (True, False))
            if not tagged:
                return _core(text)
        if node.tag == "tag:yaml.org,2002:str":
            return text
        raise self._tag_error(node, path)

    def _tag_error(self, node: yaml.Node, path: tuple[PathPart, ...]) -> SpecError:
        return SpecError(
            [
                Issue(
                    f"YAML tag {node.tag!r} is not allowed",
                    path=path,
                    file=self.file,
                    line=node.start_mark.line + 1,
                    expected="plain values (text, numbers, true/false, null, lists, mappings)",
                    found=f"a value tagged {node.tag}",
                    hint="remove the tag; quote the value if it should be text",
                )
            ],
            title="refused YAML",
        )

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

    def _mapping(self, node: yaml.MappingNode, path: tuple[PathPart, ...]) -> JSONObject:
        out: JSONObject = {}
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


def _measure(root: yaml.Node, file: str | None) -> int:
    """The number of distinct nodes; SpecError, located, past :data:`MAX_DEPTH` levels.
    Iterative: no input can exhaust the stack here."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if depth > MAX_DEPTH:
            raise SpecError(
                [
                    Issue(
                        "the document nests too deeply",
                        file=file,
                        line=node.start_mark.line + 1,
                        expected=f"at most {MAX_DEPTH} levels of mappings and lists",
                        found=f"more than {MAX_DEPTH} levels",
                        hint="flatten the structure; keep large data out of YAML",
                    )
                ],
                "refused YAML",
            )
        if isinstance(node, yaml.MappingNode):
            stack.extend((child, depth + 1) for pair in node.value for child in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
    return len(seen)


def load_yaml_text(text: str, file: str | None = None) -> Located:
    """Parse YAML text into plain data plus a path -> line map; raise SpecError on problems."""
    return parse_yaml_text(text, file)[1]


def parse_yaml_text(text: str, file: str | None = None) -> tuple[JSONValue, Located]:
    """:func:`load_yaml_text`, with the data also typed as what the loader makes of YAML:
    JSON's values (a ``Located`` may hold other data too, such as the SDK's)."""
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
    except RecursionError:  # the composer recurses per level: a document thousands deep
        raise SpecError(
            [Issue("the document nests too deeply", file=file, expected=f"at most {MAX_DEPTH} levels")],
            "refused YAML",
        ) from None
    if root is None:
        return None, Located(data=None, file=file)
    converter = _Converter(file, _measure(root, file))
    data = converter.convert(root, ())
    anchored = _anchored_keys(text) if isinstance(root, yaml.MappingNode) and len(root.value) > 1 else set()
    return data, Located(
        data=data, file=file, lines=converter.lines, issues=converter.issues, anchored=frozenset(anchored)
    )


def _anchored_keys(text: str) -> set[str]:
    """Top-level keys whose value has an anchor, read off the parser's events (the composed
    tree no longer says which nodes were anchored)."""
    keys: set[str] = set()
    depth, key, is_key = 0, None, True
    for event in yaml.parse(text, Loader=SafeLoader):
        if isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            continue
        if depth == 1 and isinstance(event, yaml.NodeEvent):
            if is_key:
                key = event.value if isinstance(event, yaml.ScalarEvent) else None
            elif getattr(event, "anchor", None) and key is not None:
                keys.add(key)
            is_key = not is_key
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
    return keys


def load_yaml_file(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> Located:
    """Read a YAML file, refusing missing, unreadable or oversized files with a located error."""
    name = os.fspath(path)
    if os.path.realpath(name) == os.devnull:  # the usual way of saying "no content"
        return Located(data=None, file=name)
    try:
        info = os.stat(name)
        if not stat.S_ISREG(info.st_mode):  # /dev/zero never ends; a FIFO may never start
            raise SpecError(
                [
                    Issue(
                        "not a regular file",
                        file=name,
                        expected="a YAML file",
                        found="a directory" if stat.S_ISDIR(info.st_mode) else "a device, pipe or socket",
                    )
                ],
                "refused file",
            )
        size = info.st_size
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

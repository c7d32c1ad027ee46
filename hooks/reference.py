"""MkDocs hook: the reference pages, generated at build time from what conveyor ships.

- ``reference/pipeline.md`` from the JSON Schema (``src/conveyor/spec/schema.json``, itself
  generated from the models), one section per definition with a table of its keys;
- ``reference/cli.md`` from the CLI's own ``--help`` of every command and group;
- ``security.md`` is ``SECURITY.md`` of the repository, as it is.

Nothing here is copied by hand, so the site cannot drift from the code. ``mkdocs.yml``
names this file under ``hooks:``; ``tests/test_docs.py`` checks what it renders.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "src" / "conveyor" / "spec" / "schema.json"
if str(ROOT / "src") not in sys.path:  # this checkout's conveyor, whichever mkdocs runs
    sys.path.insert(0, str(ROOT / "src"))

#: Help is rendered this wide, whatever the terminal building the site.
HELP_WIDTH = 100


def _anchor(name: str) -> str:
    return name.lower()


def _type(prop: dict[str, Any]) -> str:
    """A schema fragment as one short line of Markdown ("TaskNode or null", "list of text")."""
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    if "anyOf" in prop or "oneOf" in prop:
        return " or ".join(_type(p) for p in prop.get("anyOf", prop.get("oneOf", [])))
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    kind = prop.get("type")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if kind == "object":
        extra = prop.get("additionalProperties")
        if isinstance(extra, dict) and (extra.get("type") != "object" or "$ref" in extra):
            return f"mapping of name to {_type(extra)}"
        return "mapping"
    names = {"string": "text", "integer": "integer", "number": "number", "boolean": "boolean", "null": "null"}
    return names.get(str(kind), "any")


CONSTRAINTS = {
    "minLength": "at least {} characters",
    "maxLength": "at most {} characters",
    "minimum": "≥ {}",
    "exclusiveMinimum": "> {}",
    "maximum": "≤ {}",
    "exclusiveMaximum": "< {}",
    "minItems": "at least {} items",
    "pattern": "matches `{}`",
}


def _constraints(prop: dict[str, Any]) -> list[str]:
    found = [text.format(prop[key]) for key, text in CONSTRAINTS.items() if key in prop]
    for option in prop.get("anyOf", []):
        found += _constraints(option)
    return found


def _cell(text: str) -> str:
    return " ".join(text.replace("``", "`").replace("|", "\\|").split())


def _section(name: str, schema: dict[str, Any], level: str = "##") -> list[str]:
    lines = [f"{level} {name}", ""]
    if schema.get("description"):
        lines += [schema["description"].replace("``", "`"), ""]
    props = schema.get("properties", {})
    if props:
        required = set(schema.get("required", []))
        lines += ["| key | type | required | default | notes |", "|---|---|---|---|---|"]
        for key, prop in props.items():
            default = f"`{json.dumps(prop['default'])}`" if "default" in prop else ""
            notes = "; ".join(
                [*_constraints(prop), *([prop["description"]] if "description" in prop else [])]
            )
            needed = "yes" if key in required else ""
            lines.append(f"| `{key}` | {_type(prop)} | {needed} | {default} | {_cell(notes)} |")
        lines.append("")
    if schema.get("additionalProperties") is False:
        lines += ["Other keys are an error.", ""]
    return lines


def pipeline_reference(schema: dict[str, Any] | None = None) -> str:
    """The pipeline format's reference page, from the shipped JSON Schema."""
    schema = schema if schema is not None else json.loads(SCHEMA.read_text(encoding="utf-8"))
    lines = [
        "# Pipeline format",
        "",
        "Generated at build time from the JSON Schema shipped with conveyor",
        "(`src/conveyor/spec/schema.json`; `conveyor schema` prints it). Editors that read JSON",
        "Schema validate pipeline files with it. Where a step's `type` is not given, it is `task`.",
        "",
    ]
    lines += _section("Pipeline file", schema)
    for name, definition in sorted(schema.get("$defs", {}).items()):
        lines += _section(name, definition)
    return "\n".join(lines) + "\n"


def _commands(command: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    found = [(path, command)]
    for name in getattr(command, "commands", {}):
        found += _commands(command.commands[name], [*path, name])
    return found


def cli_reference() -> str:
    """The CLI's reference page: the ``--help`` of every command, as the CLI prints it."""
    import typer.main

    from conveyor.cli.main import app

    root = typer.main.get_command(app)
    lines = [
        "# Command line",
        "",
        "Generated at build time from the CLI's own help (`conveyor COMMAND --help`).",
        "",
    ]
    for path, command in _commands(root, ["conveyor"]):
        context: Any = None
        for depth in range(1, len(path) + 1):
            node = root if depth == 1 else context.command.commands[path[depth - 1]]
            context = node.context_class(  # the CLI framework's own Context
                node,
                info_name=path[depth - 1],
                parent=context,
                terminal_width=HELP_WIDTH,
                max_content_width=HELP_WIDTH,
            )
        assert context is not None
        title = " ".join(path)
        lines += [f"## {title}", "", "```text", command.get_help(context).rstrip(), "```", ""]
    return "\n".join(lines)


def security_page() -> str:
    """The repository's SECURITY.md, unchanged."""
    return (ROOT / "SECURITY.md").read_text(encoding="utf-8")


#: The generated pages: path under docs/ -> function rendering it.
PAGES = {
    "reference/pipeline.md": pipeline_reference,
    "reference/cli.md": cli_reference,
    "security.md": security_page,
}


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages to the site (MkDocs calls this before reading pages)."""
    from mkdocs.structure.files import File

    for uri, render in PAGES.items():
        files.append(File.generated(config, uri, content=render()))
    return files

"""The web UI: pages (one HTML shell and its script) and the JSON they read, over a
:class:`~conveyor.ui.source.RunSource`. This module holds what the routes in
:mod:`conveyor.ui.routes` share (assets, headers, limits, the DAG level a path opens).

``conveyor ui`` serves it over a run log store, read-only; the server mounts the same
routers with its users, sessions and actions. Every value from the run log reaches the page
as JSON and is put into the document as text (never as markup) by ``static/app.js``. The
pages load nothing from elsewhere: the Content-Security-Policy allows this origin only.
"""

from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from conveyor.runlog.codec import finite
from conveyor.spec.models import Graph, Pipeline, step_in
from conveyor.ui.source import Viewer

STATIC = resources.files("conveyor.ui") / "static"
ASSETS = {
    "app.js": "text/javascript",
    "dag.js": "text/javascript",
    "charts.js": "text/javascript",
    "compare.js": "text/javascript",
    "rerun.js": "text/javascript",
    "app.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
LOG_PAGE = 256 * 1024
#: Beyond any log a step writes (1 TiB): a larger offset, like a negative one, is refused (422).
MAX_LOG_OFFSET = 2**40
PAGES = ("/", "/runs/{run_id}", "/runs/{run_id}/logs", "/metrics", "/login", "/compare/{run_a}/{run_b}")

#: Who is looking, from a request (the server reads its session cookie; a laptop: anyone).
Guard = Callable[[Request], Viewer]


def _json(data: Any) -> JSONResponse:
    try:
        return JSONResponse(data, headers=SECURITY_HEADERS)
    except ValueError:  # NaN or infinities recorded by a run
        return JSONResponse(finite(data), headers=SECURITY_HEADERS)


def _shell() -> str:
    return (STATIC / "index.html").read_text(encoding="utf-8")


def _level(
    pipeline: Pipeline, path: str
) -> tuple[Graph, tuple[str, ...], tuple[str, ...], list[dict[str, str]]]:
    """The graph a DAG path opens (``fan``: a map's branch over all items; ``par/a``: a
    branch; ``grow/2``: a loop's iteration 2), its concrete prefix, its pattern and the
    breadcrumbs to it."""
    graph: Graph = pipeline.dag
    prefix: tuple[str, ...] = ()
    pattern: tuple[str, ...] = ()
    crumbs = [{"label": "pipeline", "path": ""}]
    parts = [p for p in path.split("/") if p]
    i = 0
    while i < len(parts):
        name = parts[i]
        node = step_in(graph, name)
        if node is None or not node.subgraphs():
            raise KeyError(f"'{name}' has no steps inside it")
        key = parts[i + 1] if i + 1 < len(parts) else None
        if node.entry in ("item", "iteration"):
            graph = node.inner("0")
            if key is not None and key.isascii() and key.isdigit():
                prefix, pattern = (*prefix, name, key), (*pattern, name, key)
            else:
                prefix, pattern, key = (*prefix, name, "*"), (*pattern, name, "*"), None
            label = f"{name} [{key}]" if key else f"{name} (all)"
        else:
            names = list(node.named_subgraphs())
            key = key if key in names else names[0]
            graph = node.inner(key)
            prefix, pattern = (*prefix, name, key), (*pattern, name, key)
            label = f"{name} / {key}"
        crumbs.append({"label": label, "path": "/".join(p for p in prefix if p != "*")})
        i += 2
    return graph, prefix, pattern, crumbs


#: The most loop iterations the run page offers one by one (beyond, through the step table).
CHOICES_LIMIT = 200


def _choices(pipeline: Pipeline, path: str, keys: Iterable[tuple[str, ...]]) -> list[dict[str, str]]:
    """The levels beside the one ``path`` opens, for the page's tabs: each branch of a
    parallel or conditional (so every branch is reachable, not only the first), or a loop's
    iterations that ran (``keys``: the run's step paths) after "all"; none for a map (its
    items are in its panel) or the pipeline's top."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return []
    name = parts[-1] if len(parts) % 2 else parts[-2]  # a level's path: name/key/name[/key]
    graph, prefix, _, _ = _level(pipeline, "/".join(parts[: len(parts) - 1 - (len(parts) + 1) % 2]))
    node = step_in(graph, name)
    if node is None:
        return []
    base = "/".join(p for p in (*prefix, name) if p != "*")
    if node.entry == "iteration":
        here = tuple(base.split("/"))
        seen = sorted({k[len(here)] for k in keys if len(k) > len(here) + 1 and k[: len(here)] == here
                       and k[len(here)].isascii() and k[len(here)].isdigit()}, key=int)  # fmt: skip
        return [{"label": "all", "path": base}] + [
            {"label": f"iteration {i}", "path": f"{base}/{i}"} for i in seen[:CHOICES_LIMIT]
        ]
    if node.entry == "item":
        return []
    return [{"label": key, "path": f"{base}/{key}"} for key in node.named_subgraphs()]

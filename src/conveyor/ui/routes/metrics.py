"""The UI's metrics: each run's metrics of one pipeline, oldest first, for the page's charts."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from conveyor.runlog.base import RunNotFoundError
from conveyor.ui.app import _json
from conveyor.ui.routes.deps import UI, Look

router = APIRouter()


@router.get("/ui/api/metrics", include_in_schema=False)
def metrics(
    viewer: Look,
    ui: UI,
    pipeline: Annotated[str, Query(max_length=200)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JSONResponse:
    """The metrics of the newest ``limit`` runs of ``pipeline`` ``viewer`` may see (each
    step's last attempt; a step inside a branch is named by its path)."""
    listed = ui.source.runs(viewer, {"pipeline": pipeline}, 0, limit)["runs"]
    points = []
    for row in reversed(listed):
        try:
            view = ui.source.views.get(row["id"])
        except RunNotFoundError:  # queued on the server: no run log yet, so no metrics
            continue
        values: dict[str, object] = {}
        with view.lock:
            records = list(view.steps.values())
        for record in records:
            for attempt in record.attempts[-1:]:
                for name, value in attempt.metrics.items():
                    values[f"{'/'.join(record.path)}:{name}" if len(record.path) > 1 else name] = value
        points.append(
            {
                "run_id": row["id"],
                "status": row["status"],
                "started_at": row["started_at"],
                "metrics": values,
            }
        )
    return _json({"pipeline": pipeline, "runs": points})

"""The UI's comparison of two runs (``/compare/A/B``): the same authorization as one run's
page (a run the viewer may not see is "not found"), values redacted as it redacts them."""

from fastapi import APIRouter, HTTPException

from conveyor.runlog.base import RunNotFoundError
from conveyor.ui.app import _json
from conveyor.ui.compare import Read, compare, read_run
from conveyor.ui.routes.deps import UI, Look, UIState, redact_texts, view_of
from conveyor.ui.source import Viewer

router = APIRouter()


def _read(ui: UIState, run_id: str, viewer: Viewer) -> Read:
    """One run of the two, read and redacted; 404 when the viewer may not see it, 409 when
    it has no run log yet (queued on the server: nothing ran to compare)."""
    try:
        view = view_of(ui, run_id, viewer)
    except RunNotFoundError:
        raise HTTPException(409, f"run '{run_id}' has not started yet: there is nothing to compare") from None
    return read_run(view, ui.source.owner(run_id), lambda value: redact_texts(ui, value))


@router.get("/ui/api/compare/{run_a}/{run_b}", include_in_schema=False)
def compare_runs(viewer: Look, ui: UI, run_a: str, run_b: str) -> object:
    """Runs ``run_a`` and ``run_b`` side by side, with what differs (see ``ui.compare``)."""
    if run_a == run_b:
        said = f"run_b: expected a run other than run_a, found '{run_b}' twice; choose two runs"
        raise HTTPException(422, said)
    return _json(compare(_read(ui, run_a, viewer), _read(ui, run_b, viewer)))

"""``conveyor ui``: the web UI over the runs a config's run log store holds, read-only."""

from __future__ import annotations

import sys
from pathlib import Path

from conveyor.cli.errors import friendly


@friendly
def serve(config: Path | None, host: str, port: int) -> int:
    """Serve the UI until interrupted; the runs are read where the config records them."""
    from conveyor.executors.run import open_store
    from conveyor.spec.load import load_config

    try:
        import uvicorn

        from conveyor.ui.local import local_app
    except ImportError as exc:
        print(f"conveyor: the UI needs the ui extra: pip install 'conveyor[ui]' ({exc})", file=sys.stderr)
        return 2
    from conveyor.cli.params import check_listenable

    check_listenable(host, port)
    run_config = load_config(config)
    store = open_store(run_config)
    where = getattr(store, "where", "the run log")
    if run_config.run_log_store.type == "memory":
        print(
            "conveyor: the run log store is 'memory': no runs outlive the process that made them; "
            "give the config your runs were recorded with (-c CONFIG)",
            file=sys.stderr,
        )
    from conveyor.ui.artifacts import catalog_folder

    section = {"type": run_config.catalog.type, "config": dict(run_config.catalog.config)}
    catalog = catalog_folder(section, str(Path.cwd()))
    print(f"conveyor ui: runs in {where}, at http://{host}:{port}/ (read-only; Ctrl-C stops)")
    uvicorn.run(local_app(store, catalog), host=host, port=port, log_level="warning")
    return 0

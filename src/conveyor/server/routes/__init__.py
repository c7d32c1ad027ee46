"""The server's endpoints, one router per resource (``health``: probes and version; ``runs``:
the API's runs; ``signin``: the UI's sessions; ``actions``: the UI's cancel and retry).

The routers are built once, at import, and hold no state: what they share (the database,
the run log store, the limits) is the :class:`~conveyor.server.routes.deps.ServerState` an
app keeps in ``app.state.server``, reached through FastAPI dependencies. A test can mount
one router on a bare app with its own state, or override a dependency, and call one
endpoint alone.
"""

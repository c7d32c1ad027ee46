"""Schemathesis over the OpenAPI spec finds no 5xx response."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from support.services import fresh_database

TOKENS: dict[str, str] = {}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The app over SQLite, and the live server over a database of its own on the real
    PostgreSQL."""
    from conveyor.server.api import create_app
    from conveyor.server.auth import create_token, create_user
    from conveyor.server.db import engine_for, migrate

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('schema') / 'server.db'}"
    else:
        url = fresh_database(request.getfixturevalue("postgres_url"), "schema_")
    if request.param == "postgres":  # the live server: `conveyor server start`, over HTTP
        from support.services import Server

        server = Server(url, tmp_path_factory.mktemp("live"), workers=1).start()
        TOKENS["ann"] = server.tokens["ann"]
        yield schemathesis.openapi.from_url(server.endpoint + "/openapi.json")
        server.stop()
        return
    migrate(url)
    engine = engine_for(url)
    create_user(engine, "ann")
    TOKENS["ann"] = create_token(engine, "ann")[1]
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(url))


def test_no_server_errors(api: Any) -> None:
    """Every operation, with generated requests (valid and not), answers below 500."""
    from hypothesis import given

    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 8
    seen: dict[str, set[int]] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            response = case.call(headers={"Authorization": f"Bearer {TOKENS['ann']}"})
            seen.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)
            assert response.status_code < 500, (
                case.method,
                case.formatted_path,
                response.status_code,
                response.text[:300],
            )
            if response.status_code >= 400:
                assert "error" in response.json()

        check()
    assert len(seen) == len(operations)  # every operation was called

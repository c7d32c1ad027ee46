"""Argo's official schemas (shipped in the package), for checking rendered manifests in tests."""

from __future__ import annotations

from typing import Any

from conveyor.executors.argo.validate import manifest_issues


def schema_errors(doc: dict[str, Any]) -> list[str]:
    """Each problem Argo's schemas find in ``doc``, one line each (empty when valid)."""
    return [issue.render() for issue in manifest_issues(doc)]

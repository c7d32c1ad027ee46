"""Argo's official schemas (../shared/argo), for checking rendered manifests in tests."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from support import ROOT

SHARED = ROOT.parent / "shared" / "argo"


def schema_errors(doc: dict[str, Any]) -> list[str]:
    if not SHARED.exists():
        pytest.skip(f"Argo's schemas are not at {SHARED}")
    sys.path.insert(0, str(SHARED))
    try:
        from validate import validate_manifest  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(SHARED))
    errors: list[str] = validate_manifest(doc, strict=True, crd=True, semantic=True)
    return errors

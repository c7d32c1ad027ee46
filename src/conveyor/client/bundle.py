"""The code bundle ``conveyor submit --code DIR`` sends: a base64 gzipped tarball."""

from __future__ import annotations

import base64
import io
import tarfile
from pathlib import Path


def encode_code(directory: Path) -> str:
    """A base64 tarball of a code directory, without caches and hidden files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(directory.rglob("*")):
            parts = path.relative_to(directory).parts
            if "__pycache__" in parts or any(p.startswith(".") for p in parts):
                continue
            archive.add(path, arcname="/".join(parts), recursive=False)
    return base64.b64encode(buffer.getvalue()).decode()

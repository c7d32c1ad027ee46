"""Artifact storage on fsspec: files put by steps, fetched by later steps, with hashes."""

from conveyor.catalog.store import Catalog, CatalogEntry, FsspecCatalog, InProcessCatalog, PathEscapeError

__all__ = ["Catalog", "CatalogEntry", "FsspecCatalog", "InProcessCatalog", "PathEscapeError"]

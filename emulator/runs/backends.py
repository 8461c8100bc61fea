"""What the run slice needs from the vector store and file domains, which live above it (in `services`).

`runs` never imports `services`: these protocols say what a run's built-in tools ask of those domains, and the
service layer connects its implementations once, when it is imported (`services.runs`, through which every
run is created).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from emulator.context import Ctx


class VectorStores(Protocol):
    def progress_pending(self, ctx: Ctx, store_ids: Sequence[str], *, until_done: bool) -> bool:
        """Observe the in-progress files of these stores once (or until done); True while any is pending."""
        ...

    def prepare_for_search(self, ctx: Ctx, store_ids: Sequence[str]) -> list[str]:
        """The ids of the stores a search may use, their pending files progressed."""
        ...


class Files(Protocol):
    def storage_path(self, files_dir: Path, file_id: str) -> Path:
        """Where a file's bytes are kept."""
        ...


class _Connected:
    vector_stores: VectorStores | None = None
    files: Files | None = None


def connect(*, vector_stores: VectorStores, files: Files) -> None:
    _Connected.vector_stores, _Connected.files = vector_stores, files


def vector_stores() -> VectorStores:
    if _Connected.vector_stores is None:
        raise RuntimeError("runs.backends.connect was not called (the service layer connects it)")
    return _Connected.vector_stores


def files() -> Files:
    if _Connected.files is None:
        raise RuntimeError("runs.backends.connect was not called (the service layer connects it)")
    return _Connected.files

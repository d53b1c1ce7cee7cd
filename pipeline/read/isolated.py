"""Parse untrusted files in isolated worker processes (pipeline.parallel.pool): a memory cap, a per-file deadline.

A parser that aborts the process (python-calamine does on some crafted files), loops, or eats all
memory takes down only its worker: that one file gets an error issue, the worker is replaced, and
the files queued behind it are read by the next one. Workers are forked once and fed in chunks, so
isolation costs a few microseconds per file, not a process start.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

from pipeline.parallel import pool as parallel
from pipeline.core.form import FormDefinition
from pipeline.parallel.pool import DEFAULT_SETTINGS, Failed, IsolationSettings
from pipeline.read.spreadsheet import ReadResult, read_submission
from pipeline.read.screen import DEFAULT_LIMITS, FileTooLarge, Limits, read_failure, read_inbox_file

__all__ = ["IsolationSettings", "READER_MODULES", "ReadOutcome", "ReaderPool", "failed_read", "read_in_process",
           "read_one"]

# What the readers import on first use: imported once before the workers are forked, so none pays for them.
READER_MODULES = ("defusedxml.ElementTree", "olefile", "python_calamine")


@dataclass(frozen=True, slots=True)
class ReadOutcome:
    sha256: str
    result: ReadResult


def read_one(path: Path | str, form: FormDefinition, limits: Limits = DEFAULT_LIMITS) -> ReadOutcome:
    """Hash and read a file from one read of its bytes (screen.read_inbox_file: no link followed, no
    wait on a pipe, a regular file only). In a worker, the sha256 is noted before any parser runs, so a
    file whose parser takes the worker down keeps the digest of what was read, and the parent never
    opens the file."""
    path = Path(path)
    try:
        raw = read_inbox_file(path, limits)
    except OSError as exc:  # FileTooLarge (hashed on the same handle), NotRegularFile, gone, no access
        sha = exc.sha256 if isinstance(exc, FileTooLarge) else ""
        return ReadOutcome(sha, ReadResult("rejected", issues=[read_failure(exc, limits)]))
    digest = hashlib.sha256(raw)
    parallel.note(digest.digest())
    return ReadOutcome(digest.hexdigest(), read_submission(path, form, limits, raw))


def failed_read(failed: Failed) -> ReadOutcome:
    """The outcome of a file whose worker died on it: its issue, and the digest the worker noted."""
    return ReadOutcome(failed.note.hex(), ReadResult("rejected", issues=[failed.issue]))


class ReaderPool:
    """Reads many files in isolated workers; `read_all` returns one ReadOutcome per path, in order.
    The workers persist from entering the `with` block to leaving it, across `read_all` calls."""

    def __init__(self, form: FormDefinition, settings: IsolationSettings = DEFAULT_SETTINGS,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self._pool = parallel.Pool(read_one, settings, args=(form, limits), preload=READER_MODULES)

    def __enter__(self) -> ReaderPool:
        self._pool.__enter__()
        return self

    def __exit__(self, exc_type: type | None, *exc_info: object) -> None:
        self._pool.__exit__(exc_type, *exc_info)

    def read_all(self, paths: list[Path], progress: Callable[[int, int], None] | None = None) -> list[ReadOutcome]:
        return [failed_read(r) if isinstance(r, Failed) else r
                for r in self._pool.map([str(p) for p in paths], progress)]


def read_in_process(paths: list[Path], form: FormDefinition, limits: Limits = DEFAULT_LIMITS) -> list[ReadOutcome]:
    """The same reading without isolation, for trusted files and debugging."""
    return [read_one(p, form, limits) for p in paths]

"""Parse untrusted files in isolated worker processes (pipeline.parallel.pool): a memory cap, a per-file deadline.

A parser that aborts the process (python-calamine does on some crafted files), loops, or eats all
memory takes down only its worker: that one file gets an error issue, the worker is replaced, and
the files queued behind it are read by the next one. Workers are forked once and fed in chunks, so
isolation costs a few microseconds per file, not a process start.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePath
from collections.abc import Callable

from pipeline.parallel import pool as parallel
from pipeline.core.form import FormDefinition
from pipeline.parallel.pool import DEFAULT_SETTINGS, Failed, IsolationSettings
from pipeline.read.spreadsheet import ReadResult, read_submission
from pipeline.core.issues import make_issue
from pipeline.read.containers import CONTAINER_KINDS, MAX_DEPTH, open_container
from pipeline.read.screen import DEFAULT_LIMITS, FileTooLarge, Limits, read_failure, read_inbox_file, screen

__all__ = ["IsolationSettings", "READER_MODULES", "ReadOutcome", "ReaderPool", "failed_read", "read_in_process",
           "read_bytes", "read_one"]

# What the readers import on first use: imported once before the workers are forked, so none pays for them.
READER_MODULES = ("defusedxml.ElementTree", "olefile", "python_calamine")


@dataclass(frozen=True, slots=True)
class ReadOutcome:
    """One submission's reading: a file's, or one member's of a container (then `part` names it)."""

    sha256: str  # of the bytes read: the file's, or the member's
    result: ReadResult
    part: str = ""  # "" for the file itself; "bao cao.xlsx", "thu.eml/bao cao.xlsx" inside a container
    size: int = -1  # the member's size in bytes; -1 for the file itself (the scan knows its size)
    received: float | None = None  # the Date of the mail the member came in
    sender: str = ""  # the From address of that mail


def read_one(path: Path | str, form: FormDefinition, limits: Limits = DEFAULT_LIMITS) -> list[ReadOutcome]:
    """Hash and read a file from one read of its bytes (screen.read_inbox_file: no link followed, no
    wait on a pipe, a regular file only): one ReadOutcome, or one per member of a container. In a
    worker, the sha256 is noted before any parser runs, so a file whose parser takes the worker down
    keeps the digest of what was read, and the parent never opens the file."""
    path = Path(path)
    try:
        raw = read_inbox_file(path, limits)
    except OSError as exc:  # FileTooLarge (hashed on the same handle), NotRegularFile, gone, no access
        sha = exc.sha256 if isinstance(exc, FileTooLarge) else ""
        return [ReadOutcome(sha, ReadResult("rejected", issues=[read_failure(exc, limits)]))]
    digest = hashlib.sha256(raw)
    parallel.note(digest.digest())
    return read_bytes(path.name, raw, digest.hexdigest(), form, limits)


def read_bytes(name: str, raw: bytes, sha256: str, form: FormDefinition, limits: Limits = DEFAULT_LIMITS,
               part: str = "", depth: int = 0, received: float | None = None, sender: str = "") -> list[ReadOutcome]:
    """What `raw` holds: a readable file's one outcome, or a container's members' outcomes, depth first."""
    named = PurePath(name)
    screened = screen(named, limits, raw)
    size = len(raw) if part else -1
    if screened.issue is None and screened.kind in CONTAINER_KINDS:
        if depth >= MAX_DEPTH:
            issue = make_issue("container_too_deep", limit=MAX_DEPTH)
            return [ReadOutcome(sha256, ReadResult("rejected", issues=[issue]), part, size, received, sender)]
        opened = open_container(screened.kind, raw, limits)
        if opened.issues:
            return [ReadOutcome(sha256, ReadResult("rejected", issues=list(opened.issues)), part, size, received,
                                sender)]
        outcomes: list[ReadOutcome] = []
        for member in opened.members:
            inner = f"{part}/{member.name}" if part else member.name
            outcomes.extend(read_bytes(member.name.rsplit("/", 1)[-1], member.data,
                                       hashlib.sha256(member.data).hexdigest(), form, limits, inner, depth + 1,
                                       member.received if member.received is not None else received,
                                       member.sender or sender))
        if not outcomes:
            left_out = "; ".join(f"{n}: {r}" for n, r in opened.skipped[:5])
            issue = make_issue("container_empty", skipped=f" (chỉ có {left_out})" if left_out else "")
            return [ReadOutcome(sha256, ReadResult("rejected", issues=[issue]), part, size, received, sender)]
        return outcomes
    result = read_submission(named, form, limits, raw, screened)
    return [ReadOutcome(sha256, result, part, size, received, sender)]


def failed_read(failed: Failed) -> list[ReadOutcome]:
    """The outcome of a file whose worker died on it: its issue, and the digest the worker noted."""
    return [ReadOutcome(failed.note.hex(), ReadResult("rejected", issues=[failed.issue]))]


class ReaderPool:
    """Reads many files in isolated workers; `read_all` returns each path's ReadOutcomes (one, or one per
    member of a container), in order of the paths.
    The workers persist from entering the `with` block to leaving it, across `read_all` calls."""

    def __init__(self, form: FormDefinition, settings: IsolationSettings = DEFAULT_SETTINGS,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self._pool = parallel.Pool(read_one, settings, args=(form, limits), preload=READER_MODULES)

    def __enter__(self) -> ReaderPool:
        self._pool.__enter__()
        return self

    def __exit__(self, exc_type: type | None, *exc_info: object) -> None:
        self._pool.__exit__(exc_type, *exc_info)

    def read_all(self, paths: list[Path], progress: Callable[[int, int], None] | None = None
                 ) -> list[list[ReadOutcome]]:
        return [failed_read(r) if isinstance(r, Failed) else r
                for r in self._pool.map([str(p) for p in paths], progress)]


def read_in_process(paths: list[Path], form: FormDefinition, limits: Limits = DEFAULT_LIMITS
                    ) -> list[list[ReadOutcome]]:
    """The same reading without isolation, for trusted files and debugging."""
    return [read_one(p, form, limits) for p in paths]

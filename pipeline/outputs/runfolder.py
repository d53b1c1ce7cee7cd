"""The run folder: every output of one run, written under a temporary name and published by one rename.

The steps are plain calls in a straight line; nothing here calls back into the caller:

    run = begin_run_folder(outbox, started)            # <outbox>/.<name>.partial-<pid>/
    try:
        grids = reread_sheets(consolidation)            # or: feedback.grids_needed → reader pool →
                                                        #     feedback.grids_from_reads
        with start_workbook(consolidation, run.staging):  # forked for large runs, inline for small ones
            write_exports(consolidation, run.staging, grids, run.name)  # CSVs, feedback copies, summary
            ...                                         # the caller's own work, while the workbook is built
        ...                                             # the caller's own files into run.staging (the mails)
        final = publish_run_folder(run)                 # renamed to <outbox>/<name>/ in one step
    except BaseException:
        discard_run_folder(run)
        raise

`write_outputs` (one folder's outputs) and `write_run` (a whole run folder) are those steps for
callers with nothing of their own to add. The output stage never reads the inbox: `reread_sheets`
is the one explicit step that does, before any output is written.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from time import perf_counter

from pipeline.parallel import pool as parallel
from pipeline.stages.consolidate import Consolidation
from pipeline.outputs.feedback import Grid, grids_from_reads, grids_needed, write_feedback
from pipeline.core.files import fsync_dir, write_file_atomic
from pipeline.read.isolated import read_in_process
from pipeline.outputs.csvexport import write_csvs, write_summary
from pipeline.read.screen import DEFAULT_LIMITS, Limits
from pipeline.outputs.workbook import WORKBOOK_NAME, build_workbook

PARALLEL_WORKBOOK_FILES = 200  # below this the workbook takes less time than forking a writer


# ---------------------------------------------------------------- the folder

@dataclass
class RunFolder:
    """A run folder being written: `staging` until `publish_run_folder` renames it to `outbox/name`."""

    outbox: Path
    name: str
    staging: Path
    clock: float = field(default_factory=perf_counter)

    def elapsed(self) -> float:
        """Seconds since the folder was begun (the run's "write" timing)."""
        return perf_counter() - self.clock


def new_run_name(outbox: Path, now: datetime | None = None) -> str:
    stamp = (now or datetime.now()).strftime("%Y-%m-%d_%H%M%S")
    name, counter = stamp, 1
    while (outbox / name).exists():
        counter += 1
        name = f"{stamp}_{counter}"
    return name


def begin_run_folder(outbox: Path, started: datetime | None = None) -> RunFolder:
    """An empty staging folder for the next run, named after `started` (default: now); half-written
    folders of runs that were killed are removed first."""
    outbox.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(outbox)
    name = new_run_name(outbox, started)
    staging = outbox / f".{name}.partial-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    return RunFolder(outbox, name, staging)


def publish_run_folder(run: RunFolder) -> Path:
    """Rename the staging folder to `outbox/name` in one step (durably); the published folder."""
    final = run.outbox / run.name
    os.rename(run.staging, final)
    fsync_dir(run.outbox)
    return final


def discard_run_folder(run: RunFolder) -> None:
    """Remove a staging folder whose run failed."""
    shutil.rmtree(run.staging, ignore_errors=True)


def remove_stale_staging(outbox: Path) -> list[Path]:
    """Half-written run folders left by a run that was killed; their owner is gone."""
    removed = []
    for candidate in outbox.glob(".*.partial-*"):
        pid = candidate.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not parallel.process_alive(int(pid)) and candidate.is_dir():
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


# ---------------------------------------------------------------- the outputs

def reread_sheets(consolidation: Consolidation, limits: Limits = DEFAULT_LIMITS) -> dict[str, Grid]:
    """The explicit step that reads inbox files after the assessment: the sheets feedback copies show
    but the first reading did not keep, each checked against the sha256 that was judged.

    Read in this process (isolation.read_in_process: no link followed, no wait on a pipe, a regular
    file only); a caller with a reader pool reads `grids_needed(consolidation)` there and hands the
    reads to `grids_from_reads` instead."""
    outcomes = grids_needed(consolidation)
    if not outcomes:
        return {}
    reads = read_in_process([o.path for o in outcomes], consolidation.form, limits)
    return grids_from_reads(outcomes, reads)


def write_workbook(consolidation: Consolidation, folder: Path) -> Path:
    return write_file_atomic(folder / WORKBOOK_NAME, build_workbook(consolidation))


def write_exports(consolidation: Consolidation, folder: Path, grids: dict[str, Grid], run_name: str = "") -> None:
    """Everything of a run's outputs but the workbook: the CSV exports, the feedback copies (showing
    `grids`, see `reread_sheets`) and summary.json."""
    write_csvs(consolidation, folder)
    write_feedback(consolidation, folder, grids)
    write_summary(consolidation, folder, run_name)


def write_outputs(consolidation: Consolidation, folder: Path, grids: dict[str, Grid], run_name: str = "",
                  parallel_from: int = PARALLEL_WORKBOOK_FILES) -> None:
    """The workbook, CSV exports, feedback copies and summary of one run, into `folder`. A failure of
    the workbook raises the same exception however the workbook was built (see `start_workbook`)."""
    with start_workbook(consolidation, folder, parallel_from):
        write_exports(consolidation, folder, grids, run_name)


def write_run(consolidation: Consolidation, outbox: Path, started: datetime | None = None) -> Path:
    """A whole run folder, published under `outbox`; the folder. Nothing of it is left on failure."""
    run = begin_run_folder(outbox, started)
    try:
        grids = reread_sheets(consolidation)
        write_outputs(consolidation, run.staging, grids, run.name)
        return publish_run_folder(run)
    except BaseException:
        discard_run_folder(run)
        raise


# ---------------------------------------------------------------- the workbook, beside the rest

class WorkbookJob:
    """The workbook being written while the caller writes the rest. `wait()` returns once it is written
    and raises what building it raised; `stop()` abandons it. As a context manager: waits when the
    block ends cleanly, stops when it raises."""

    def __init__(self, child: parallel.Child | None = None, failure: Exception | None = None) -> None:
        self._child, self._failure = child, failure

    def wait(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.wait()
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def stop(self) -> None:
        child, self._child, self._failure = self._child, None, None
        if child is not None:
            child.stop()

    def __enter__(self) -> WorkbookJob:
        return self

    def __exit__(self, exc_type: type | None, *exc_info: object) -> None:
        if exc_type is None:
            self.wait()
        else:
            self.stop()


def start_workbook(consolidation: Consolidation, folder: Path,
                   parallel_from: int = PARALLEL_WORKBOOK_FILES) -> WorkbookJob:
    """Start writing `folder/tong_hop.xlsx`. From `parallel_from` files on it is built in a forked
    process (measured to pay at 10,000 files: the reader workers are done, so a core is free while
    this process writes the rest); below, it is built here and now. Either way a failure is raised by
    `wait()`, as the same exception type with the same message."""
    if len(consolidation.files) >= parallel_from and parallel.can_fork():
        return WorkbookJob(child=parallel.in_child(write_workbook, consolidation, folder))
    try:
        write_workbook(consolidation, folder)
    except Exception as exc:  # raised by wait(), where the forked writer's failure is raised
        return WorkbookJob(failure=exc)
    return WorkbookJob()



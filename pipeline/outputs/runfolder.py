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

import multiprocessing
import os
import pickle
import shutil
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from time import perf_counter
from typing import Any

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
        if pid.isdigit() and not _alive(int(pid)) and candidate.is_dir():
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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

    def __init__(self, child: _Child | None = None, failure: Exception | None = None) -> None:
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
    if len(consolidation.files) >= parallel_from and "fork" in multiprocessing.get_all_start_methods():
        return WorkbookJob(child=_forked(write_workbook, consolidation, folder))
    try:
        write_workbook(consolidation, folder)
    except Exception as exc:  # raised by wait(), where the forked writer's failure is raised
        return WorkbookJob(failure=exc)
    return WorkbookJob()


class _Child:
    """A forked process running one function; `wait()` raises in this process what it raised there."""

    def __init__(self, process: Any, results: Any, paused: ExitStack) -> None:
        self._process, self._results, self._paused = process, results, paused

    def wait(self) -> None:
        try:
            report = self._results.recv()  # before join: a long report must not wait on a full pipe
        except EOFError:
            report = _NO_REPORT  # killed (out of memory, a signal) before it could say anything
        finally:
            self._finish()
        if report is None and self._process.exitcode == 0:
            return
        if isinstance(report, _Failure):
            raise report.exception()
        raise RuntimeError(f"the workbook writer failed (exit code {self._process.exitcode})")

    def stop(self) -> None:
        self._process.terminate()
        self._finish()

    def _finish(self) -> None:
        self._results.close()
        self._process.join()
        self._paused.close()


_NO_REPORT = object()


def _forked(function: Callable[..., Any], *args: Any) -> _Child:
    """Run `function(*args)` in a forked copy of this process.

    While both processes share the heap, neither collects garbage among the objects that existed at
    the fork (parallel.gc_paused until the child is joined): a collection writes to every object it
    visits, which would copy each shared page."""
    context = multiprocessing.get_context("fork")
    results, report = context.Pipe(duplex=False)
    process = context.Process(target=_report_to, args=(report, function, args), name="workbook-writer")
    paused = ExitStack()
    paused.enter_context(parallel.gc_paused())
    try:
        process.start()
    except BaseException:
        paused.close()
        results.close()
        raise
    finally:
        report.close()  # the child's end: once the child is gone, recv() ends instead of waiting
    return _Child(process, results, paused)


def _report_to(report: Any, function: Callable[..., Any], args: tuple) -> None:
    """The forked child: run, then report None or the failure through the pipe."""
    try:
        function(*args)
    except BaseException as exc:
        report.send(_Failure.of(exc))
        report.close()
        raise SystemExit(1) from None
    report.send(None)
    report.close()


@dataclass(frozen=True)
class _Failure:
    """An exception of the child, carried to the parent: itself when it pickles, else its type and
    message (an exception whose constructor takes other arguments than its message does not)."""

    pickled: bytes | None
    kind: bytes | None
    message: str
    trace: str

    @classmethod
    def of(cls, exc: BaseException) -> _Failure:
        trace = "".join(traceback.format_exception(exc))
        try:
            pickled = pickle.dumps(exc)
            pickle.loads(pickled)
        except Exception:
            pickled = None
        try:
            kind = pickle.dumps(type(exc))
        except Exception:
            kind = None
        return cls(pickled, kind, str(exc), trace)

    def exception(self) -> BaseException:
        exc: BaseException | None = None
        if self.pickled is not None:
            try:
                exc = pickle.loads(self.pickled)
            except Exception:
                exc = None
        if exc is None and self.kind is not None:
            try:
                kind = pickle.loads(self.kind)
                exc = kind.__new__(kind, self.message)
                exc.args = (self.message,)
            except Exception:
                exc = None
        if not isinstance(exc, BaseException):
            exc = RuntimeError(f"the workbook writer failed: {self.message}")
        exc.add_note(f"raised in the workbook writer process:\n{self.trace}")
        return exc

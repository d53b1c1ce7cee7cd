"""Run outputs: the consolidated workbook and the CSV exports downstream tools read.

The four CSV files are a contract: column names and order never change, new columns only append.
"""

from __future__ import annotations

import csv
import gc
import json
import multiprocessing
import os
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Iterator

from pipeline.consolidate import Consolidation
from pipeline.textnorm import printable

SUBMISSIONS_COLUMNS = ("file", "unit_code", "status", "modified_at", "sha256", "errors", "warnings")
VALUES_COLUMNS = ("unit_code", "year", "metric", "value", "file", "sheet", "cell")
TOTALS_COLUMNS = ("year", "metric", "value")
ISSUES_COLUMNS = ("unit_code", "file", "sheet", "cell", "severity", "code", "message")

WORKBOOK_NAME = "tong_hop.xlsx"
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """A CSV cell from outside, safe to open in a spreadsheet: one line (control characters and line
    breaks escaped, so no record breaks and no later line can start a formula) that never runs as one."""
    text = printable(text)
    return "'" + text if text.startswith(_FORMULA_TRIGGERS) else text


def modified_at(mtime: float) -> str:
    return datetime.fromtimestamp(mtime).astimezone().isoformat(timespec="seconds")


def submission_rows(consolidation: Consolidation) -> Iterator[tuple]:
    """Rows of submissions.csv, in SUBMISSIONS_COLUMNS order, ready to write (texts neutralised)."""
    for outcome in consolidation.files:
        yield (neutralise(outcome.name), neutralise(outcome.unit), outcome.status, modified_at(outcome.mtime),
               outcome.sha256, outcome.errors, outcome.warnings)
    for code in consolidation.missing:
        yield ("", neutralise(code), "missing", "", "", 0, 0)


def value_rows(consolidation: Consolidation) -> Iterator[tuple]:
    """Rows of values.csv, in VALUES_COLUMNS order: one per accepted unit, year and metric."""
    form = consolidation.form
    for outcome in consolidation.accepted():
        values, cells = outcome.values, outcome.cells
        # A file's texts repeat on each of its rows: neutralised once.
        unit, name, sheet = neutralise(outcome.unit), neutralise(outcome.name), neutralise(outcome.sheet)
        for year in form.years:
            for metric in form.metric_keys:
                yield (unit, year, metric, values[(year, metric)], name, sheet, cells.get((year, metric), ""))


def total_rows(consolidation: Consolidation) -> Iterator[tuple]:
    form = consolidation.form
    for year in form.years:
        for metric in form.metric_keys:
            yield (year, metric, consolidation.totals[(year, metric)])


def issue_rows(consolidation: Consolidation) -> Iterator[tuple]:
    for i in consolidation.issues:
        yield (neutralise(i.unit), neutralise(i.file), neutralise(i.sheet), i.cell, i.severity, i.code,
               neutralise(i.message))


def write_csv_atomic(path: Path, columns: tuple[str, ...], rows: Iterable[tuple]) -> None:
    """UTF-8 CSV, written row by row to a temporary file and renamed into place. Rows come ready:
    every text that came from a submission already went through `neutralise`."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(temporary, "w", encoding="utf-8", newline="", buffering=1 << 20) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def write_file_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def write_csvs(consolidation: Consolidation, folder: Path) -> dict[str, Path]:
    outputs = {
        "submissions.csv": (SUBMISSIONS_COLUMNS, submission_rows(consolidation)),
        "values.csv": (VALUES_COLUMNS, value_rows(consolidation)),
        "totals.csv": (TOTALS_COLUMNS, total_rows(consolidation)),
        "issues.csv": (ISSUES_COLUMNS, issue_rows(consolidation)),
    }
    paths = {}
    for name, (columns, rows) in outputs.items():
        paths[name] = folder / name
        write_csv_atomic(paths[name], columns, rows)
    return paths


def summary(consolidation: Consolidation, run_name: str = "") -> dict[str, object]:
    """A machine-readable digest of the run (also written as summary.json)."""
    counts = {status: 0 for status in ("accepted", "rejected", "superseded", "ignored")}
    for outcome in consolidation.files:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    units = consolidation.registry.units
    return {
        "run": run_name,
        "form": consolidation.form.edition,
        "units": len(units),
        "units_accepted": sum(1 for u in units if consolidation.unit_status(u.code) == "accepted"),
        "units_rejected": sum(1 for u in units if consolidation.unit_status(u.code) == "rejected"),
        "units_missing": len(consolidation.missing),
        "files": counts,
        "missing": list(consolidation.missing),
        "totals": {str(year): {m: consolidation.totals[(year, m)] for m in consolidation.form.metric_keys}
                   for year in consolidation.form.years},
    }


PARALLEL_WORKBOOK_FILES = 200  # below this the workbook takes less time than forking a writer


def write_outputs(consolidation: Consolidation, folder: Path, run_name: str = "",
                  parallel_from: int = PARALLEL_WORKBOOK_FILES,
                  meanwhile: Callable[[], None] | None = None) -> None:
    """The workbook, CSV exports, feedback copies and summary of one run, into `folder`.

    For large runs the workbook (the slowest output) is built in a forked process while this one writes
    the rest, and then runs `meanwhile` (other work of the caller's): the reader workers are finished by
    then, so the second core is free.
    """
    from pipeline.feedback import write_feedback

    writer = None
    if len(consolidation.files) >= parallel_from and "fork" in multiprocessing.get_all_start_methods():
        writer = multiprocessing.get_context("fork").Process(target=_write_workbook, args=(consolidation, folder),
                                                             name="workbook-writer")
        # While both processes share the heap, neither collects garbage among the objects that existed at
        # the fork: a collection writes to every object it visits, which would copy each shared page.
        gc.freeze()
        try:
            writer.start()
        except BaseException:
            gc.unfreeze()
            raise
    else:
        _write_workbook(consolidation, folder)
    try:
        write_csvs(consolidation, folder)
        write_feedback(consolidation, folder)
        write_file_atomic(folder / "summary.json",
                          json.dumps(summary(consolidation, run_name), ensure_ascii=False, indent=2).encode("utf-8"))
        if meanwhile is not None:
            meanwhile()
    finally:
        if writer is not None:
            writer.join()
            gc.unfreeze()
    if writer is not None and (writer.exitcode != 0 or not (folder / WORKBOOK_NAME).exists()):
        raise RuntimeError(f"the workbook writer failed (exit code {writer.exitcode})")


def _write_workbook(consolidation: Consolidation, folder: Path) -> None:
    from pipeline.workbook import build_workbook

    write_file_atomic(folder / WORKBOOK_NAME, build_workbook(consolidation))

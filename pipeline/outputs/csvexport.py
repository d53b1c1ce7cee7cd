"""The CSV exports downstream tools read, and summary.json: rows from a consolidation, written atomically.

The four CSV files are a contract: column names and order never change, new columns only append.
The run folder around them (and the workbook, the feedback copies) is pipeline.outputs.runfolder's.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from pipeline.stages.consolidate import Consolidation
from pipeline.core.files import open_atomic, write_file_atomic
from pipeline.core.formatting import modified_at
from pipeline.core.textnorm import printable

SUBMISSIONS_COLUMNS = ("file", "unit_code", "status", "modified_at", "sha256", "errors", "warnings", "sheet")
VALUES_COLUMNS = ("unit_code", "year", "metric", "value", "file", "sheet", "cell")
TOTALS_COLUMNS = ("year", "metric", "value")
ISSUES_COLUMNS = ("unit_code", "file", "sheet", "cell", "severity", "code", "message")

_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """A CSV cell from outside, safe to open in a spreadsheet: one line (control characters and line
    breaks escaped, so no record breaks and no later line can start a formula) that never runs as one."""
    text = printable(text)
    return "'" + text if text.startswith(_FORMULA_TRIGGERS) else text


def submission_rows(consolidation: Consolidation) -> Iterator[tuple]:
    """Rows of submissions.csv, in SUBMISSIONS_COLUMNS order, ready to write (texts neutralised)."""
    for outcome in consolidation.files:
        yield (neutralise(outcome.name), neutralise(outcome.unit), outcome.status, modified_at(outcome.mtime),
               outcome.sha256, outcome.errors, outcome.warnings, neutralise(outcome.sheet))
    for code in consolidation.missing:
        yield ("", neutralise(code), "missing", "", "", 0, 0, "")


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
    """UTF-8 CSV, written row by row and renamed into place (files.open_atomic). Rows come ready:
    every text that came from a submission already went through `neutralise`."""
    with open_atomic(path, "w", encoding="utf-8", newline="", buffering=1 << 20) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)


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


SUMMARY_NAME = "summary.json"


def write_summary(consolidation: Consolidation, folder: Path, run_name: str = "") -> Path:
    data = json.dumps(summary(consolidation, run_name), ensure_ascii=False, indent=2).encode("utf-8")
    return write_file_atomic(folder / SUMMARY_NAME, data)

"""Cell values as units typed them → whole numbers, with an Issue for everything doubtful; and
`read_and_prepare`, the reader workers' function: one file read and normalized into a `Submission`.

Vietnamese writes thousands with "." ("1.250"); units also paste "1,250" or "1 250", leave cells
blank, type "-" for none, and some programs hand over 1250.0 or text with stray spaces.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from pipeline.core.form import FormDefinition
from pipeline.read.isolated import ReadOutcome, read_one
from pipeline.core.issues import Issue, make_issue
from pipeline.parallel.pool import Failed
from pipeline.read.spreadsheet import RawCell, RawForm
from pipeline.read.screen import DEFAULT_LIMITS, Limits
from pipeline.core.textnorm import printable

MAX_VALUE = 10**9  # no unit has a billion members; larger numbers are typos or overflow
_DASHES = {"-", "–", "—", "−", "--", "‒"}
_SPACES = re.compile(r"[\s\u00a0\u2007\u202f\u200b\ufeff]+")
_SIGNED = re.compile(r"^([+-]?)\s*(\d.*)$", re.ASCII)
_PLAIN = re.compile(r"^\d+$", re.ASCII)
_GROUPED = re.compile(r"^\d{1,3}(?:([., ])\d{3})(?:\1\d{3})*$", re.ASCII)
_DECIMAL = re.compile(r"^(\d+)[.,](\d+)$", re.ASCII)
_GROUPED_DECIMAL = re.compile(r"^\d{1,3}(?:([., ])\d{3})+(?!\1)[.,]\d+$", re.ASCII)
_ERROR_TEXT = re.compile(r"^#(?:DIV/0!|REF!|VALUE!|N/A|NAME\?|NUM!|NULL!|SPILL!|CALC!|GETTING_DATA|ERR\d*)")


@dataclass(frozen=True, slots=True)
class Parsed:
    value: int | None  # None when the cell cannot count as a number
    code: str = ""  # issue code; "" when the value is clean
    shown: str = ""  # the text the unit sees in the cell, for messages


def _shown(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _plain_whole(value: Any) -> bool:
    """A number cell holding a whole number in range: nearly every cell, taken without more checks."""
    return type(value) is float and value.is_integer() and abs(value) < MAX_VALUE


def parse_whole(value: Any, formula_state: str = "") -> Parsed:
    """One cell → a whole number (or None) and the issue code it deserves."""
    if formula_state == "no_value":
        return Parsed(None, "formula_no_value", str(value or "").strip())
    if formula_state.startswith("error:"):
        return Parsed(None, "value_formula_error", formula_state[6:])
    if _plain_whole(value):
        return Parsed(int(value))  # the common case, first: a number cell holding a whole number
    if value is None:
        return Parsed(0, "value_blank", "")
    if isinstance(value, bool) or isinstance(value, (datetime, date, time, timedelta)):
        return Parsed(None, "value_not_number", _shown(value))
    if isinstance(value, int):
        return Parsed(value) if abs(value) < MAX_VALUE else Parsed(None, "value_too_large", _shown(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            return Parsed(None, "value_not_number", _shown(value))
        nearest = round(value)
        if abs(value - nearest) > 1e-9 * max(1.0, abs(value)):
            return Parsed(None, "value_fraction", _shown(value))
        return Parsed(int(nearest)) if abs(nearest) < MAX_VALUE else Parsed(None, "value_too_large", _shown(value))
    if not isinstance(value, str):
        return Parsed(None, "value_not_number", _shown(value))
    return _parse_text(value)


def _bounded(number: int, shown: str) -> Parsed:
    if abs(number) >= MAX_VALUE:
        return Parsed(None, "value_too_large", shown)
    return Parsed(number)


# Words units write after a count ("142 ĐV", "15 người", "3 em"): the number is what a person reads.
_UNIT_WORD = re.compile(r"^(.*?\d)\s*\.?\s*(?:đoàn\s*viên|đ\.?\s*v\.?|dv|người|ng\.?|em|hs|sv|"
                        r"học\s*sinh|sinh\s*viên|đồng\s*chí|đ/c|đc|cn|công\s*nhân)\s*\.?$", re.IGNORECASE)


def _parse_text(raw: str) -> Parsed:
    parsed = _parse_number_text(raw)
    if parsed.code == "value_not_number":
        worded = _UNIT_WORD.match(_SPACES.sub(" ", unicodedata.normalize("NFC", raw)).strip())
        if worded:
            number = _parse_number_text(worded.group(1))
            if number.value is not None and not number.code:
                return Parsed(number.value, "value_with_unit_word", raw.strip())
    return parsed


def _parse_number_text(raw: str) -> Parsed:
    shown = raw.strip()
    text = _SPACES.sub(" ", raw).strip()
    if not text:
        return Parsed(0, "value_blank", shown)
    if text in _DASHES:
        return Parsed(0, "value_blank", shown)
    if _ERROR_TEXT.match(text.upper()):
        return Parsed(None, "value_formula_error", shown)
    signed = _SIGNED.match(text)
    if signed is None:
        return Parsed(None, "value_not_number", shown)
    sign = -1 if signed.group(1) == "-" else 1
    body = signed.group(2)
    if _PLAIN.match(body):
        return _bounded(sign * int(body), shown)
    if _GROUPED.match(body):
        return _bounded(sign * int(re.sub(r"[^0-9]", "", body)), shown)
    decimal = _DECIMAL.match(body)
    if decimal:
        if set(decimal.group(2)) == {"0"}:
            return _bounded(sign * int(decimal.group(1)), shown)
        return Parsed(None, "value_fraction", shown)
    if _GROUPED_DECIMAL.match(body):
        return Parsed(None, "value_fraction", shown)
    return Parsed(None, "value_not_number", shown)


@dataclass(frozen=True, slots=True)
class Normalized:
    """One file's numbers: per (year, metric) and for the total row, with their cell addresses."""

    values: dict[tuple[int, str], int | None]
    cells: dict[tuple[int, str], str]
    total: dict[str, int | None]
    total_cells: dict[str, str]
    issues: tuple[Issue, ...] = ()


def normalize_form(form: RawForm, years: tuple[int, ...]) -> Normalized:
    """Parse every data cell of the first row of each form year, and the total row."""
    values: dict[tuple[int, str], int | None] = {}
    cells: dict[tuple[int, str], str] = {}
    total: dict[str, int | None] = {}
    total_cells: dict[str, str] = {}
    issues: list[Issue] = []
    seen: set[int] = set()
    for row in form.rows:
        if row.year not in years or row.year in seen:
            continue  # unexpected and repeated rows are structure issues already
        seen.add(row.year)
        for metric, cell in row.cells.items():
            value = cell.value
            if not cell.formula_state and _plain_whole(value):
                # What parse_whole would say, without building its answer.
                values[(row.year, metric)] = int(value)
                cells[(row.year, metric)] = cell.address
                continue
            parsed = parse_whole(value, cell.formula_state)
            values[(row.year, metric)] = parsed.value
            cells[(row.year, metric)] = cell.address
            if parsed.code:
                issues.append(_cell_issue(parsed, cell, form.sheet))
    if form.total_row is not None and any(c.value is not None for c in form.total_row.cells.values()):
        for metric, cell in form.total_row.cells.items():
            total_cells[metric] = cell.address
            if cell.value is None and not cell.formula_state:
                total[metric] = None  # a blank total cell states nothing to compare
                continue
            parsed = parse_whole(cell.value, cell.formula_state)
            total[metric] = parsed.value
            if parsed.code and parsed.code != "value_blank":
                issues.append(_cell_issue(parsed, cell, form.sheet))
    return Normalized(values, cells, total, total_cells, tuple(issues))


def _cell_issue(parsed: Parsed, cell: RawCell, sheet: str) -> Issue:
    written = f"ghi \"{parsed.shown}\"" if parsed.shown else "để trống"
    extra: dict[str, object] = {"written": written} if parsed.code == "value_blank" else {}
    if parsed.code == "value_with_unit_word":
        extra["value"] = parsed.value
    return make_issue(parsed.code, sheet=sheet, cell=cell.address, found=parsed.shown,
                      expected="số nguyên không âm", **extra)


# ---------------------------------------------------------------- one file, read and normalized

@dataclass(frozen=True, slots=True)
class Submission:
    """One submission read and normalized, in a reader worker: all the later stages need of it. A file
    is one submission, or several: one per member of a container (`part`), one per sheet or table
    holding the form (`sheet`).

    Texts that came from the submitter and are shown in every output (sheet names) are printable here.
    """

    sha256: str
    format: str  # xlsx | xls | ods | xlsb | xml2003 | docx | odt | doc | rtf | pdf | image, or "rejected"
    sheets: tuple[str, ...] = ()
    issues: tuple[Issue, ...] = ()  # the reader's
    token: Any = None  # pipeline.core.token.Token of a copy handed out by the province
    sheet: str = ""  # the sheet the form was found on; "" when none was
    unit_line: str = ""
    unit_line_cell: str = ""
    numbers: Normalized | None = None  # None when no form was found
    grid: list | None = None  # the sheet as received, kept only for files likely sent back (see read_and_prepare)
    part: str = ""  # the member of a container this is ("" for the file itself)
    size: int = -1  # the member's size; -1 for the file itself
    received: float | None = None  # the Date of the mail it came in, when it came in one
    sender: str = ""  # that mail's From address

    @property
    def located(self) -> bool:
        return self.numbers is not None


def read_and_prepare(path: str, form: FormDefinition, limits: Limits = DEFAULT_LIMITS) -> tuple[Submission, ...]:
    """Read `path` (isolated.read_one) and normalize every copy of the form found in it."""
    return tuple(submission for read in read_one(Path(path), form, limits) for submission in prepared(read, form))


def prepared(read: ReadOutcome, form: FormDefinition) -> list[Submission]:
    """The submissions of one reading: one per copy of the form found, or one saying why there is none."""
    result = read.result
    sheets = tuple(printable(s) for s in result.sheets)
    part = printable(read.part) if read.part else ""
    if not result.found:
        return [Submission(read.sha256, result.format, sheets, tuple(result.issues), result.token, part=part,
                           size=read.size, received=read.received, sender=read.sender)]
    submissions = []
    for found in result.found:
        located = found.form
        numbers = normalize_form(located, form.years)
        issues = (*result.issues, *found.issues)
        # Likely sent back: keep the sheet. Files whose remarks come only from validation are read again
        # when their feedback copy is written (see feedback.write_feedback); a container's member or one of
        # several copies in a workbook is kept always, as reading the file again would not say which.
        doubtful = bool(read.part) or len(result.found) > 1 or any(
            i.severity != "info" for i in (*issues, *numbers.issues))
        submissions.append(Submission(read.sha256, result.format, sheets, issues, result.token,
                                      sheet=printable(located.sheet), unit_line=located.unit_line,
                                      unit_line_cell=located.unit_line_cell, numbers=numbers,
                                      grid=located.grid if doubtful else None, part=part, size=read.size,
                                      received=read.received, sender=read.sender))
    return submissions


def failed_submission(failed: Failed) -> tuple[Submission, ...]:
    """The submission of a file whose reader worker died on it: its issue, and the digest the worker noted."""
    return (Submission(failed.note.hex(), "rejected", issues=(failed.issue,)),)

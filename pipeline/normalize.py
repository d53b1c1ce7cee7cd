"""Cell values as units typed them → whole numbers, with an Issue for everything doubtful.

Vietnamese writes thousands with "." ("1.250"); units also paste "1,250" or "1 250", leave cells
blank, type "-" for none, and some programs hand over 1250.0 or text with stray spaces.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from pipeline.issues import Issue, make_issue
from pipeline.read import RawCell, RawForm

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


def _parse_text(raw: str) -> Parsed:
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


@dataclass(slots=True)
class Normalized:
    """One file's numbers: per (year, metric) and for the total row, with their cell addresses."""

    values: dict[tuple[int, str], int | None] = field(default_factory=dict)
    cells: dict[tuple[int, str], str] = field(default_factory=dict)
    total: dict[str, int | None] = field(default_factory=dict)
    total_cells: dict[str, str] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)


def normalize_form(form: RawForm, years: tuple[int, ...]) -> Normalized:
    """Parse every data cell of the first row of each form year, and the total row."""
    result = Normalized()
    seen: set[int] = set()
    for row in form.rows:
        if row.year not in years or row.year in seen:
            continue  # unexpected and repeated rows are structure issues already
        seen.add(row.year)
        for metric, cell in row.cells.items():
            value = cell.value
            if not cell.formula_state and _plain_whole(value):
                # What parse_whole would say, without building its answer.
                result.values[(row.year, metric)] = int(value)
                result.cells[(row.year, metric)] = cell.address
                continue
            parsed = parse_whole(value, cell.formula_state)
            result.values[(row.year, metric)] = parsed.value
            result.cells[(row.year, metric)] = cell.address
            if parsed.code:
                result.issues.append(_cell_issue(parsed, cell, form.sheet))
    if form.total_row is not None and any(c.value is not None for c in form.total_row.cells.values()):
        for metric, cell in form.total_row.cells.items():
            result.total_cells[metric] = cell.address
            if cell.value is None and not cell.formula_state:
                result.total[metric] = None  # a blank total cell states nothing to compare
                continue
            parsed = parse_whole(cell.value, cell.formula_state)
            result.total[metric] = parsed.value
            if parsed.code and parsed.code != "value_blank":
                result.issues.append(_cell_issue(parsed, cell, form.sheet))
    return result


def _cell_issue(parsed: Parsed, cell: RawCell, sheet: str) -> Issue:
    extra = {"written": f"ghi \"{parsed.shown}\"" if parsed.shown else "để trống"} if parsed.code == "value_blank" else {}
    return make_issue(parsed.code, sheet=sheet, cell=cell.address, found=parsed.shown,
                      expected="số nguyên không âm", **extra)

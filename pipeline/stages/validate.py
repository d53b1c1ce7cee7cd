"""Rules of the form definition as one pandera schema, run once over every submission.

All submissions go into one long frame (a row per submission and year, plus a row per reported
total), validated in a single lazy call: pandera on one frame is two orders of magnitude faster
than frame by frame. Each failure case is mapped back to the Excel cell it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.core.form import FormDefinition, Rule
from pipeline.core.formatting import format_number, format_percent
from pipeline.core.issues import Issue

if TYPE_CHECKING:
    import pandas as pd
    from pandas.api.extensions import ExtensionArray
    import pandera.pandas as pa

SUBMISSION = "_submission"
YEAR = "_year"
IS_TOTAL = "_is_total"
ALLOCATED = "_allocated"


@dataclass(slots=True)
class SubmissionValues:
    """What validation needs of one file: numbers, their cells, and the province's allocation."""

    file: str
    unit: str
    sheet: str
    values: dict[tuple[int, str], int | None]
    cells: dict[tuple[int, str], str]
    total: dict[str, int | None]
    total_cells: dict[str, str]
    allocation: dict[int, int]  # year → quota allocated by the province


def build_schema(form: FormDefinition) -> pa.DataFrameSchema:
    import pandera.pandas as pa

    metrics = list(form.metric_keys)
    column_checks: dict[str, list] = {m: [] for m in metrics}
    frame_checks = []
    for rule in form.rules:
        if rule.kind == "min":
            for metric in metrics:
                column_checks[metric].append(pa.Check(_min_check(rule.min), name=rule.code))
        elif rule.kind == "not_greater":
            frame_checks.append(pa.Check(_not_greater_check(rule), name=rule.code))
        elif rule.kind == "max_change":
            frame_checks.append(pa.Check(_max_change_check(rule), name=rule.code))
        elif rule.kind == "total_row":
            frame_checks.extend(pa.Check(_total_check(metric), name=f"{rule.code}:{metric}") for metric in metrics)
        elif rule.kind == "allocation":
            frame_checks.append(pa.Check(_allocation_check(rule), name=rule.code))
    columns = {m: pa.Column("Int64", checks=column_checks[m], nullable=True) for m in metrics}
    columns[SUBMISSION] = pa.Column("int64")
    columns[YEAR] = pa.Column("int64")
    columns[IS_TOTAL] = pa.Column("bool")
    columns[ALLOCATED] = pa.Column("Int64", nullable=True)
    return pa.DataFrameSchema(columns, checks=frame_checks, name=form.edition, coerce=False)


def _min_check(minimum: int):
    return lambda s: s.isna() | (s >= minimum)


def _sum(frame: pd.DataFrame, keys: tuple[str, ...]) -> pd.Series:
    # A sum with any unreadable cell is unknown; that cell already has its own error.
    return frame[list(keys)].sum(axis=1, min_count=len(keys)).where(frame[list(keys)].notna().all(axis=1))


def _not_greater_check(rule: Rule):
    def check(frame: pd.DataFrame) -> pd.Series:
        left, right = _sum(frame, rule.left), _sum(frame, rule.right)
        return (frame[IS_TOTAL] | left.isna() | right.isna() | (left <= right)).astype(bool)
    return check


def _previous_year_value(frame: pd.DataFrame, metric: str) -> pd.Series:
    years = frame[~frame[IS_TOTAL]].sort_values([SUBMISSION, YEAR])
    previous = years.groupby(SUBMISSION)[metric].shift()
    gap = years.groupby(SUBMISSION)[YEAR].diff()
    return previous.where(gap == 1).reindex(frame.index)


def _max_change_check(rule: Rule):
    def check(frame: pd.DataFrame) -> pd.Series:
        previous = _previous_year_value(frame, rule.metric)
        current = frame[rule.metric]
        known = previous.notna() & current.notna() & (previous > 0)
        change = (current - previous).abs().astype("Float64") / previous.astype("Float64")
        return (~known | (change <= rule.max_ratio)).fillna(True).astype(bool)
    return check


def _year_sums(frame: pd.DataFrame, metric: str) -> pd.Series:
    """For every row, the sum of its submission's year rows; NA when any of them is unreadable."""
    years = frame[~frame[IS_TOTAL]]
    grouped = years[metric].groupby(years[SUBMISSION])
    sums = grouped.sum(min_count=1).where(years[metric].isna().groupby(years[SUBMISSION]).sum() == 0)
    return frame[SUBMISSION].map(sums)


def _total_check(metric: str):
    def check(frame: pd.DataFrame) -> pd.Series:
        expected = _year_sums(frame, metric)
        reported = frame[metric]
        ok = ~frame[IS_TOTAL] | reported.isna() | expected.isna() | (reported == expected)
        return ok.fillna(True).astype(bool)
    return check


def _allocation_check(rule: Rule):
    def check(frame: pd.DataFrame) -> pd.Series:
        reported, allocated = frame[rule.metric], frame[ALLOCATED]
        ok = frame[IS_TOTAL] | reported.isna() | allocated.isna() | (reported == allocated)
        return ok.fillna(True).astype(bool)
    return check


def build_frame(submissions: list[SubmissionValues], form: FormDefinition) -> pd.DataFrame:
    import pandas as pd

    columns: dict[str, list] = {m: [] for m in form.metric_keys}
    columns.update({SUBMISSION: [], YEAR: [], IS_TOTAL: [], ALLOCATED: []})
    for index, sub in enumerate(submissions):
        for year in form.years:
            if not any((year, m) in sub.values for m in form.metric_keys):
                continue
            for metric in form.metric_keys:
                columns[metric].append(sub.values.get((year, metric)))
            columns[SUBMISSION].append(index)
            columns[YEAR].append(year)
            columns[IS_TOTAL].append(False)
            columns[ALLOCATED].append(sub.allocation.get(year))
        if sub.total_cells:
            for metric in form.metric_keys:
                columns[metric].append(sub.total.get(metric))
            columns[SUBMISSION].append(index)
            columns[YEAR].append(0)
            columns[IS_TOTAL].append(True)
            columns[ALLOCATED].append(None)
    data: dict[str, ExtensionArray] = {m: pd.array(columns[m], dtype="Int64") for m in form.metric_keys}
    data[SUBMISSION] = pd.array(columns[SUBMISSION], dtype="int64")
    data[YEAR] = pd.array(columns[YEAR], dtype="int64")
    data[IS_TOTAL] = pd.array(columns[IS_TOTAL], dtype="bool")
    data[ALLOCATED] = pd.array(columns[ALLOCATED], dtype="Int64")
    return pd.DataFrame(data)


def warm_up(form: FormDefinition) -> None:
    """One small validation that fails every minimum: pandas and pandera load much of what they need
    (failure-case reporting among it) on first use, and this does it ahead of the real call."""
    keys = [(year, metric) for year in form.years for metric in form.metric_keys]
    sample = SubmissionValues(file="", unit="", sheet="", values=dict.fromkeys(keys, -1), cells={},
                              total={}, total_cells={}, allocation={})
    validate([sample], form)


def validate(submissions: list[SubmissionValues], form: FormDefinition,
             schema: pa.DataFrameSchema | None = None) -> list[list[Issue]]:
    """Issues per submission (same order as given), from one lazy validation of all of them."""
    import pandera.errors

    found: list[list[Issue]] = [[] for _ in submissions]
    if not submissions:
        return found
    frame = build_frame(submissions, form)
    if frame.empty:
        return found
    schema = schema or build_schema(form)
    try:
        schema.validate(frame, lazy=True)
        return found
    except pandera.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    rules = {rule.code: rule for rule in form.rules}
    derived = _Derived(frame)
    seen: set[tuple[str, int, str]] = set()
    for check, column, index in zip(cases["check"], cases["column"], cases["index"], strict=True):
        if index is None or check is None:
            continue
        code, _, check_metric = str(check).partition(":")
        rule = rules.get(code)
        if rule is None:
            continue  # dtype failures cannot happen: the frame is built with the schema's dtypes
        metric = check_metric or (column if rule.kind == "min" else rule.cell or rule.metric)
        key = (str(check), int(index), metric)
        if key in seen:
            continue
        seen.add(key)
        sub_index = derived.column(SUBMISSION)[int(index)]
        found[sub_index].append(_issue(rule, submissions[sub_index], derived, int(index), metric, form))
    for issues in found:
        issues.sort(key=lambda i: (_cell_order(i.cell), i.code))
    return found


def _cell_order(cell: str) -> tuple[int, str]:
    digits = "".join(ch for ch in cell if ch.isdigit())
    letters = "".join(ch for ch in cell if ch.isalpha())
    return (int(digits) if digits else 0, letters.rjust(3))


def _as_list(series: pd.Series) -> list:
    """Plain Python values, None for NA: one conversion instead of a pandas lookup per failure."""
    # pandas takes any na_value; pandas-stubs leave None out of the types it allows
    return series.to_numpy(dtype=object, na_value=None).tolist()  # type: ignore[call-overload]


class _Derived:
    """The frame as Python lists, plus year sums and previous-year values, each built once when needed."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._columns: dict[str, list] = {}
        self._sums: dict[str, list] = {}
        self._previous: dict[str, list] = {}

    def column(self, name: str) -> list:
        if name not in self._columns:
            self._columns[name] = _as_list(self.frame[name])
        return self._columns[name]

    def year_sum(self, metric: str, index: int) -> int:
        if metric not in self._sums:
            self._sums[metric] = _as_list(_year_sums(self.frame, metric))
        return int(self._sums[metric][index])

    def previous(self, metric: str, index: int) -> int:
        if metric not in self._previous:
            self._previous[metric] = _as_list(_previous_year_value(self.frame, metric))
        return int(self._previous[metric][index])


def _issue(rule: Rule, sub: SubmissionValues, derived: _Derived, index: int, metric: str,
           form: FormDefinition) -> Issue:
    row = {name: derived.column(name)[index] for name in (IS_TOTAL, YEAR, ALLOCATED, metric, *rule.left, *rule.right)}
    is_total = bool(row[IS_TOTAL])
    year = int(row[YEAR])
    value = row[metric]
    fields: dict[str, object] = {"year": year, "label": form.metric(metric).label,
                                 "found": format_number(value) if value is not None else ""}
    expected = ""
    if is_total:
        cell = sub.total_cells.get(metric, "")
        expected = format_number(derived.year_sum(metric, index))
    else:
        cell = sub.cells.get((year, metric), "")
    if rule.kind == "not_greater":
        left = sum(int(row[k]) for k in rule.left)
        right = sum(int(row[k]) for k in rule.right)
        fields.update(left=format_number(left), right=format_number(right))
        fields["found"] = format_number(left)
        expected = f"≤ {format_number(right)}"
    elif rule.kind == "max_change":
        previous = derived.previous(metric, index)
        change = abs(int(value) - previous) / previous
        fields.update(previous=format_number(previous), percent=format_percent(change, 0))
        expected = f"thay đổi ≤ {format_percent(rule.max_ratio, 0)} so với {format_number(previous)}"
    elif rule.kind == "allocation":
        expected = format_number(int(row[ALLOCATED]))
    elif rule.kind == "min":
        expected = f"≥ {rule.min}"
    fields["expected"] = expected
    fields["cell"] = cell
    return Issue(code=rule.code, severity=rule.severity, message=rule.message.format(**fields), unit=sub.unit,
                 file=sub.file, sheet=sub.sheet, cell=cell, found=str(fields["found"]), expected=expected)

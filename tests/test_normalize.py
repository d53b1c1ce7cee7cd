"""Cell values → whole numbers: every accepted spelling, every rejected one, and never an exception."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given, settings, strategies as st

from pipeline.stages.normalize import MAX_VALUE, normalize_form, parse_whole
from pipeline.read.spreadsheet import RawCell, RawForm, RawRow


@pytest.mark.parametrize(
    ("raw", "value", "code"),
    [
        (1250, 1250, ""),
        (1250.0, 1250, ""),
        ("1250", 1250, ""),
        ("1.250", 1250, ""),
        ("1,250", 1250, ""),
        ("1 250", 1250, ""),
        ("1\u00a0250", 1250, ""),
        ("1.250.000", 1250000, ""),
        ("  45 ", 45, ""),
        ("12.0", 12, ""),
        ("+7", 7, ""),
        ("0", 0, ""),
        (None, 0, "value_blank"),
        ("", 0, "value_blank"),
        ("   ", 0, "value_blank"),
        ("-", 0, "value_blank"),
        ("–", 0, "value_blank"),
        ("—", 0, "value_blank"),
        (12.5, None, "value_fraction"),
        ("12.5", None, "value_fraction"),
        ("1,5", None, "value_fraction"),
        ("1.250,5", None, "value_fraction"),
        ("1,250.75", None, "value_fraction"),
        ("không có", None, "value_not_number"),
        ("12 người", 12, "value_with_unit_word"),
        ("142 ĐV", 142, "value_with_unit_word"),
        ("1.250 đoàn viên", 1250, "value_with_unit_word"),
        ("3 em", 3, "value_with_unit_word"),
        ("12 ab", None, "value_not_number"),
        ("người 12", None, "value_not_number"),
        ("abc", None, "value_not_number"),
        ("1.250.00", None, "value_not_number"),
        ("12 5", None, "value_not_number"),
        ("٣", None, "value_not_number"),
        (True, None, "value_not_number"),
        (date(2024, 1, 2), None, "value_not_number"),
        (datetime(2024, 1, 2, 3, 4), None, "value_not_number"),
        (float("nan"), None, "value_not_number"),
        ("#DIV/0!", None, "value_formula_error"),
        ("#REF!", None, "value_formula_error"),
        (1e20, None, "value_too_large"),
        ("-5", -5, ""),
        (-5, -5, ""),
    ],
)
def test_parse_whole(raw, value, code):
    parsed = parse_whole(raw)
    assert (parsed.value, parsed.code) == (value, code)


def test_formula_states_win_over_the_cached_text():
    assert parse_whole("=SUM(C10:C12)", "no_value").code == "formula_no_value"
    error = parse_whole(None, "error:#DIV/0!")
    assert (error.value, error.code, error.shown) == (None, "value_formula_error", "#DIV/0!")


def _grouped(number: int, separator: str) -> str:
    return f"{number:,}".replace(",", separator)


@given(st.integers(min_value=0, max_value=MAX_VALUE - 1), st.sampled_from([".", ",", " ", "\u00a0"]),
       st.text(alphabet=" \t", max_size=3), st.text(alphabet=" \t", max_size=3))
def test_thousands_separators_round_trip(number, separator, before, after):
    parsed = parse_whole(before + _grouped(number, separator) + after)
    assert parsed.value == number
    assert parsed.code == ""


@given(st.integers(min_value=0, max_value=MAX_VALUE - 1))
def test_integral_floats_are_whole_numbers(number):
    assert parse_whole(float(number)).value == number


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=1, max_value=9))
def test_non_integral_numbers_are_fractions(whole, tenth):
    assert parse_whole(whole + tenth / 10).code == "value_fraction"
    assert parse_whole(f"{whole},{tenth}").code == "value_fraction"


@given(st.one_of(st.text(), st.floats(), st.integers(), st.booleans(), st.none(), st.dates(), st.datetimes()))
def test_any_value_gets_a_verdict(raw):
    parsed = parse_whole(raw)
    assert (parsed.value is None) == (parsed.code not in ("", "value_blank"))
    if parsed.value is not None:
        assert abs(parsed.value) < MAX_VALUE


_CELL_VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2 * MAX_VALUE, 2 * MAX_VALUE),
                         st.text(max_size=12), st.none(), st.booleans(),
                         st.sampled_from([float(MAX_VALUE), -float(MAX_VALUE), MAX_VALUE - 1.0, 1e300, -0.0]))


@settings(max_examples=200)
@given(st.lists(st.tuples(_CELL_VALUES, st.sampled_from(["", "no_value", "error:#DIV/0!"])), min_size=7, max_size=7))
def test_normalize_form_agrees_with_parse_whole_cell_by_cell(cells):
    """normalize_form takes a shortcut for plain whole-number cells; every cell still gets parse_whole's verdict."""
    metrics = ["members_total", "outstanding_members", "quota_assigned", "admitted_pupils", "admitted_students",
               "admitted_workers_state", "admitted_workers_private"]
    row = RawRow(row=12, label="Năm 2021", label_cell="B12", year=2021,
                 cells={m: RawCell(f"{'CDEFGHI'[i]}12", v, state) for i, (m, (v, state)) in enumerate(zip(metrics, cells))})
    form = RawForm(sheet="Biểu mẫu", header_row=10, year_column="B", columns={}, unit_line="", unit_line_cell="",
                   rows=[row], total_row=None)
    normalized = normalize_form(form, (2021, 2022, 2023))
    expected_issues = []
    for metric, cell in row.cells.items():
        parsed = parse_whole(cell.value, cell.formula_state)
        assert normalized.values[(2021, metric)] == parsed.value
        assert normalized.cells[(2021, metric)] == cell.address
        if parsed.code:
            expected_issues.append((parsed.code, cell.address))
    assert [(i.code, i.cell) for i in normalized.issues] == expected_issues

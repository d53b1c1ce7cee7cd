"""The fixture builders write what they claim, at the addresses they claim."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook, SheetVisibleEnum

# Import the sibling module whether or not tests/ is a package.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from builders import (  # noqa: E402
    ADMITTED_METRICS,
    BLANK_UNIT_LINE,
    PROFILES,
    FormSpec,
    Formula,
    convert_with_soffice,
    convert_with_ssconvert,
    default_values,
    freeze_zip_timestamps,
    needs_soffice,
    needs_ssconvert,
    write_openpyxl,
    write_xlsxwriter,
)


def calamine_cell(path: Path, sheet: str, ref: str) -> object:
    row, col = openpyxl.utils.cell.coordinate_to_tuple(ref)
    data = CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet)
    start_row, start_col = data.start or (0, 0)
    rows = data.to_python(skip_empty_area=False)
    return rows[row - 1 - start_row][col - 1 - start_col] if rows else None


def messy_spec() -> FormSpec:
    values = default_values(7)
    values[2021]["members_total"] = "12.480"
    values[2022]["outstanding_members"] = " 45 "
    values[2022]["admitted_pupils"] = None
    values[2023]["admitted_students"] = "-"
    return FormSpec(unit_line="BCH HUYỆN ĐOÀN DẦU TIẾNG", values=values,
                    place_date="Dầu Tiếng, ngày 05 tháng 02 năm 2024")


# -- geometry ---------------------------------------------------------------


def test_canonical_addresses() -> None:
    spec = FormSpec()
    assert spec.header_row == 8
    assert spec.first_data_row == 10
    assert spec.cell_of(2021, "members_total") == "C10"
    assert spec.cell_of(2022, "outstanding_members") == "D11"
    assert spec.cell_of(2023, "admitted_workers_private") == "I12"
    assert spec.cell_of(2022, "year") == "B11"
    assert spec.signature_row == 14


def test_offsets_move_the_table() -> None:
    assert FormSpec(title_rows=4).cell_of(2021, "members_total") == "C14"
    assert FormSpec(header_rows=3).cell_of(2021, "members_total") == "C11"
    assert FormSpec(inserted_rows=[None, "Ghi chú"]).cell_of(2023, "quota_assigned") == "E14"
    spec = FormSpec(title_rows=4, header_rows=3, inserted_rows=[None], total_row="Cộng")
    assert spec.cell_of(2021, "admitted_pupils") == "F16"
    assert spec.total_cell("members_total") == "C19"


def test_repeated_and_missing_years() -> None:
    spec = FormSpec(row_years=[2021, 2022, 2022, 2023])
    assert spec.cell_of(2022, "year", occurrence=1) == "B12"
    assert spec.cell_of(2023, "members_total") == "C13"
    with pytest.raises(KeyError):
        FormSpec(row_years=[2021, 2023]).cell_of(2022, "members_total")


# -- openpyxl ---------------------------------------------------------------


def test_openpyxl_writes_layout_and_raw_values(tmp_path: Path) -> None:
    spec = messy_spec()
    path = write_openpyxl(spec, tmp_path / "dt.xlsx")
    ws = openpyxl.load_workbook(path)["Biểu mẫu"]
    assert ws["A1"].value == "BCH ĐOÀN TỈNH BÌNH DƯƠNG"
    assert ws["A2"].value == "BCH HUYỆN ĐOÀN DẦU TIẾNG"
    assert ws["F2"].value == "Dầu Tiếng, ngày 05 tháng 02 năm 2024"
    assert ws["A4"].value == "BÁO CÁO"
    assert ws["A8"].value == "TT" and ws["H8"].value == "Số TNCCN được kết nạp Đảng"
    assert ws["H9"].value == "Khu vực nhà nước" and ws["I9"].value == "Khu vực DN ngoài nhà nước"
    merged = {str(r) for r in ws.merged_cells.ranges}
    assert {"A1:D1", "A2:D2", "A8:A9", "G8:G9", "H8:I8", "F14:I14"} <= merged
    assert ws["B10"].value == "Năm 2021" and ws["A12"].value == 3
    assert ws[spec.cell_of(2021, "members_total")].value == "12.480"
    assert ws[spec.cell_of(2022, "outstanding_members")].value == " 45 "
    assert ws[spec.cell_of(2022, "admitted_pupils")].value is None
    assert ws[spec.cell_of(2023, "admitted_students")].value == "-"
    assert ws[spec.cell_of(2023, "members_total")].value == spec.values[2023]["members_total"]
    assert ws["F15"].value == "BÍ THƯ" and ws["F18"].value == spec.signer


def test_year_label_styles(tmp_path: Path) -> None:
    for style, expected in (("năm", "năm 2022"), ("number", 2022), ("text", "2022")):
        spec = FormSpec(year_labels=style)
        path = write_openpyxl(spec, tmp_path / f"{style}.xlsx")
        assert openpyxl.load_workbook(path).active[spec.cell_of(2022, "year")].value == expected


def test_instruction_and_hidden_sheets(tmp_path: Path) -> None:
    spec = FormSpec(instruction_sheet=True, hidden_sheet=True)
    path = write_openpyxl(spec, tmp_path / "kcq.xlsx")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Hướng dẫn", "Bản cũ", "Biểu mẫu"]
    assert [ws.sheet_state for ws in wb.worksheets] == ["visible", "hidden", "visible"]
    assert wb.active.title == "Biểu mẫu"
    ref = spec.cell_of(2021, "members_total")
    assert wb["Bản cũ"][ref].value != wb["Biểu mẫu"][ref].value
    meta = CalamineWorkbook.from_path(str(path)).sheets_metadata
    assert [m.visible for m in meta] == [SheetVisibleEnum.Visible, SheetVisibleEnum.Hidden,
                                         SheetVisibleEnum.Visible]


def test_openpyxl_output_is_byte_stable(tmp_path: Path) -> None:
    spec = messy_spec()
    assert write_openpyxl(spec, tmp_path / "a.xlsx").read_bytes() == \
        write_openpyxl(spec, tmp_path / "b.xlsx").read_bytes()


# -- xlsxwriter -------------------------------------------------------------


def test_xlsxwriter_formulas_keep_cached_values(tmp_path: Path) -> None:
    values = default_values(3, profile="district")
    members = int(values[2022]["members_total"])
    values[2022]["members_total"] = Formula(f"={members - 1000}+1000", members)
    values[2023]["quota_assigned"] = Formula("={quota_assigned@2022}+2", int(values[2022]["quota_assigned"]) + 2)
    spec = FormSpec(values=values, total_row="Tổng cộng", title_rows=4)
    path = write_xlsxwriter(spec, tmp_path / "bc.xlsx")

    formulas = openpyxl.load_workbook(path).active
    assert formulas[spec.cell_of(2022, "members_total")].value == f"={members - 1000}+1000"
    assert formulas[spec.cell_of(2023, "quota_assigned")].value == f"={spec.cell_of(2022, 'quota_assigned')}+2"
    first, last = spec.first_data_row, spec.last_data_row
    assert formulas[spec.total_cell("outstanding_members")].value == f"=SUM(D{first}:D{last})"
    assert formulas[f"A{spec.total_row_number}"].value == "Tổng cộng"

    cached = openpyxl.load_workbook(path, data_only=True).active
    assert cached[spec.cell_of(2022, "members_total")].value == members
    assert calamine_cell(path, "Biểu mẫu", spec.total_cell("outstanding_members")) == \
        sum(int(values[y]["outstanding_members"]) for y in values)


def test_hand_typed_total_row(tmp_path: Path) -> None:
    spec = FormSpec(total_row="Cộng", total_values={"members_total": 123})
    path = write_xlsxwriter(spec, tmp_path / "bb.xlsx")
    ws = openpyxl.load_workbook(path).active
    assert ws["A13"].value == "Cộng" and ws["C13"].value == 123 and ws["D13"].value is None


def test_xlsxwriter_output_is_byte_stable(tmp_path: Path) -> None:
    spec = FormSpec(instruction_sheet=True, hidden_sheet=True, header_rows=3)
    assert write_xlsxwriter(spec, tmp_path / "a.xlsx").read_bytes() == \
        write_xlsxwriter(spec, tmp_path / "b.xlsx").read_bytes()


def test_both_writers_agree_on_cells(tmp_path: Path) -> None:
    spec = FormSpec(unit_line=BLANK_UNIT_LINE, header_rows=3, inserted_rows=[["A", "B", 1, 2, 3, 4, 5, 6, 7]])
    a = openpyxl.load_workbook(write_openpyxl(spec, tmp_path / "a.xlsx")).active
    b = openpyxl.load_workbook(write_xlsxwriter(spec, tmp_path / "b.xlsx")).active
    grid = lambda ws: [[c.value for c in row] for row in ws.iter_rows(min_row=1, max_row=20, max_col=9)]  # noqa: E731
    assert grid(a) == grid(b)
    assert {str(r) for r in a.merged_cells.ranges} == {str(r) for r in b.merged_cells.ranges}
    assert a["H9"].value == "Đảng" and a["H10"].value == "Khu vực nhà nước"


# -- realistic numbers ------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), profile=st.sampled_from(sorted(PROFILES)))
def test_default_values_are_consistent(seed: int, profile: str) -> None:
    values = default_values(seed, profile=profile)
    assert sorted(values) == [2021, 2022, 2023]
    previous = None
    for year in sorted(values):
        row = values[year]
        assert all(isinstance(v, int) and v >= 0 for v in row.values())
        assert row["outstanding_members"] <= row["members_total"]
        assert sum(row[m] for m in ADMITTED_METRICS) <= row["outstanding_members"]
        assert 3 <= row["quota_assigned"] <= 60
        if previous is not None:
            assert abs(row["members_total"] - previous) < 0.3 * previous
        previous = row["members_total"]
    if profile == "district":
        assert values[2021]["members_total"] >= 1000


def test_default_values_are_reproducible_and_take_quotas() -> None:
    assert default_values("DT") == default_values("DT")
    values = default_values("DT", quotas={2021: 19, 2022: 20, 2023: 21}, members=7830)
    assert [values[y]["quota_assigned"] for y in (2021, 2022, 2023)] == [19, 20, 21]
    assert values[2021]["members_total"] == 7830


def test_freeze_zip_timestamps(tmp_path: Path) -> None:
    from datetime import datetime

    path = write_xlsxwriter(FormSpec(), tmp_path / "f.xlsx")
    freeze_zip_timestamps(path, datetime(2024, 2, 3, 10, 30, 0))
    with zipfile.ZipFile(path) as zf:
        assert {info.date_time for info in zf.infolist()} == {(2024, 2, 3, 10, 30, 0)}
    assert openpyxl.load_workbook(path).active["A8"].value == "TT"


# -- real programs ----------------------------------------------------------


@needs_soffice
@pytest.mark.parametrize("fmt", ["xls", "ods", "xlsx"])
def test_libreoffice_round_trip(tmp_path: Path, fmt: str) -> None:
    spec = messy_spec()
    spec.instruction_sheet = True
    spec.hidden_sheet = True
    src = write_openpyxl(spec, tmp_path / "src.xlsx")
    out = convert_with_soffice(src, fmt, tmp_path / "out")
    assert out == tmp_path / "out" / f"src.{fmt}" and out.exists()
    meta = CalamineWorkbook.from_path(str(out)).sheets_metadata
    assert [m.name for m in meta] == ["Hướng dẫn", "Bản cũ", "Biểu mẫu"]
    assert meta[1].visible == SheetVisibleEnum.Hidden
    assert calamine_cell(out, "Biểu mẫu", "A2") == "BCH HUYỆN ĐOÀN DẦU TIẾNG"
    assert calamine_cell(out, "Biểu mẫu", spec.cell_of(2021, "members_total")) == "12.480"
    assert calamine_cell(out, "Biểu mẫu", spec.cell_of(2023, "members_total")) == \
        spec.values[2023]["members_total"]
    assert calamine_cell(out, "Biểu mẫu", spec.cell_of(2023, "admitted_students")) == "-"


@needs_ssconvert
@pytest.mark.parametrize("suffix", [".xls", ".xlsx"])
def test_gnumeric_round_trip(tmp_path: Path, suffix: str) -> None:
    spec = messy_spec()
    spec.total_row = "Cộng"
    src = write_xlsxwriter(spec, tmp_path / "src.xlsx")
    out = convert_with_ssconvert(src, tmp_path / f"gn{suffix}")
    assert out.exists()
    assert calamine_cell(out, "Biểu mẫu", "H9") == "Khu vực nhà nước"
    # Gnumeric's xlsx writes inline strings without xml:space="preserve", so
    # calamine reads " 45 " back as "45"; its xls keeps the spaces.
    padded = calamine_cell(out, "Biểu mẫu", spec.cell_of(2022, "outstanding_members"))
    assert padded == (" 45 " if suffix == ".xls" else "45")
    assert calamine_cell(out, "Biểu mẫu", spec.cell_of(2022, "quota_assigned")) == \
        spec.values[2022]["quota_assigned"]
    assert calamine_cell(out, "Biểu mẫu", spec.total_cell("quota_assigned")) == \
        spec.expected_total("quota_assigned")

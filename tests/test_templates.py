"""The copies of the form handed out to units: layout, guards, and the round trip through the pipeline."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from conftest import REGISTRY, only_run_folder, read_csv
from hypothesis import given
from hypothesis import strategies as st

from pipeline.stages.identify import UnitMatcher, identify
from pipeline.stages.intake import scan
from pipeline.read.spreadsheet import read_submission
from pipeline.run import Options, process
from pipeline.cli import templates_command
from pipeline.handout.templates import (
    FORM_SHEET,
    GUIDE_SHEET,
    blank_file_name,
    format_deadline,
    unit_file_name,
    unit_line,
    write_all,
    write_blank_template,
    write_unit_template,
)
from pipeline.core.token import TOKEN_SHEET, token_rows

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
PDFTOTEXT = shutil.which("pdftotext")
PDFTOPPM = shutil.which("pdftoppm")
needs_soffice = pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed")

YEARS = (2021, 2022, 2023)
INPUT_COLUMNS = "CDFGHI"  # every metric column but the quota (E), which the province fills in
ROWS = {2021: 10, 2022: 11, 2023: 12}


# ---------------------------------------------------------------- helpers

def figures(seed: int) -> dict[int, dict[str, int]]:
    """Consistent numbers for one unit: ĐVUT ≤ members, admitted ≤ ĐVUT, members change well under 50%."""
    out = {}
    for i, year in enumerate(YEARS):
        members = 800 + 37 * seed + 60 * i
        outstanding = 90 + seed + 5 * i
        out[year] = {"C": members, "D": outstanding, "F": 3 + i, "G": 5 + seed % 4, "H": 2, "I": 4 + i}
    return out


def fill(path: Path, target: Path, seed: int, *, unit_text: str | None = None,
         quotas: dict[int, int] | None = None) -> Path:
    """What a unit does in Excel: type the numbers into the input cells (and the date), save under any name."""
    wb = openpyxl.load_workbook(path)
    ws = wb[FORM_SHEET]
    for year, row in ROWS.items():
        for column, value in figures(seed)[year].items():
            ws[f"{column}{row}"] = value
        if quotas is not None:
            ws[f"E{row}"] = quotas[year]
    if unit_text is not None:
        ws["A2"] = unit_text
    ws["F2"] = "Bình Dương, ngày 05 tháng 02 năm 2024"
    target.parent.mkdir(parents=True, exist_ok=True)
    wb.save(target)
    return target


def soffice_convert(src: Path, fmt: str, outdir: Path) -> Path:
    """Open src in LibreOffice and save it as fmt; a throw-away profile per call so runs never collide."""
    profile = Path(tempfile.mkdtemp(prefix="lo_", dir="/tmp"))
    work = Path(tempfile.mkdtemp(prefix="lo_out_"))
    try:
        subprocess.run([SOFFICE, "--headless", "--norestore", f"-env:UserInstallation={profile.as_uri()}",
                        "--convert-to", fmt, "--outdir", str(work), str(src)],
                       capture_output=True, timeout=180, check=False)
        produced = work / f"{src.stem}.{fmt.split(':')[0]}"
        assert produced.exists(), f"LibreOffice did not write {produced.name}"
        outdir.mkdir(parents=True, exist_ok=True)
        return Path(shutil.move(str(produced), outdir / produced.name))
    finally:
        shutil.rmtree(profile, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def run_pipeline(inbox: Path, isolate: bool = False):
    return process(scan(inbox), Options(registry=REGISTRY, isolate=isolate))


def only(consolidation, name: str):
    [outcome] = [o for o in consolidation.files if o.name == name]
    return outcome


def issue_codes(outcome) -> list[str]:
    return [issue.code for issue in outcome.issues]


@pytest.fixture(scope="module")
def copies(tmp_path_factory, form, registry) -> dict[str, Path]:
    """Every unit's copy plus the blank one, written once for the module."""
    out = tmp_path_factory.mktemp("bieu_mau")
    paths = write_all(out, form, registry, deadline="2024-02-10")
    named = {unit.code: path for unit, path in zip(registry.units, paths)}
    named["blank"] = paths[-1]
    return named


# ---------------------------------------------------------------- what gets written

def test_write_all_names_one_file_per_unit_and_a_blank(copies, registry, form):
    out = copies["DT"].parent
    assert copies["DT"].name == "DT - Huyện đoàn Dầu Tiếng.xlsx"
    assert copies["blank"] == out / "bieu_mau_2021_2023.xlsx" == out / blank_file_name(form)
    expected = {f"{u.code} - {u.name}.xlsx" for u in registry.units} | {"bieu_mau_2021_2023.xlsx"}
    assert {p.name for p in out.iterdir()} == expected  # no temporary files left behind
    assert len(expected) == len(registry.units) + 1


def test_blank_copy_goes_where_asked(tmp_path, form, registry):
    paths = write_all(tmp_path / "bieu_mau", form, registry, blank_dir=tmp_path)
    assert paths[-1] == tmp_path / "bieu_mau_2021_2023.xlsx"
    assert all(p.parent == tmp_path / "bieu_mau" for p in paths[:-1])


def test_unit_file_name_is_safe_on_windows(registry):
    unit = registry.unit("DT")
    odd = type(unit)(code="X/1", name='Đoàn "Khối": A*B?')
    assert unit_file_name(odd) == "X-1 - Đoàn -Khối-- A-B-.xlsx"
    assert unit_file_name(registry.unit("CDVNS")) == "CDVNS - Đoàn Trường Cao đẳng Việt Nam – Singapore.xlsx"


def test_form_sheet_layout(copies, registry, form):
    wb = openpyxl.load_workbook(copies["DT"])
    assert wb.sheetnames == [FORM_SHEET, GUIDE_SHEET, TOKEN_SHEET]
    assert wb.active.title == FORM_SHEET
    assert wb[FORM_SHEET].sheet_state == "visible" and wb[GUIDE_SHEET].sheet_state == "visible"
    ws = wb[FORM_SHEET]
    assert ws["A1"].value == "BCH ĐOÀN TỈNH BÌNH DƯƠNG"
    assert ws["F1"].value == "ĐOÀN TNCS HỒ CHÍ MINH"
    assert ws["A2"].value == "BCH HUYỆN ĐOÀN DẦU TIẾNG"
    assert ws["F2"].value == "....., ngày .... tháng .... năm 2024"
    assert ws["A4"].value == "BÁO CÁO"
    assert ws["A5"].value == ("Kết quả công tác phát triển đảng trong học sinh, sinh viên, thanh niên công nhân "
                              "tỉnh Bình Dương")
    assert ws["A6"].value == "giai đoạn 2021 - 2023"
    header = {c: ws[f"{c}8"].value for c in "ABCDEFGH"}
    assert header == {"A": "TT", "B": "Năm", "C": "Tổng số đoàn viên", "D": "Số đoàn viên ưu tú",
                      "E": "Chỉ tiêu được giao kết nạp Đảng", "F": "Số học sinh được kết nạp đảng",
                      "G": "Số sinh viên được kết nạp đảng", "H": "Số TNCCN được kết nạp Đảng"}
    assert (ws["H9"].value, ws["I9"].value) == ("Khu vực nhà nước", "Khu vực DN ngoài nhà nước")
    merged = {str(r) for r in ws.merged_cells.ranges}
    assert {"A1:D1", "F1:I1", "A2:D2", "F2:I2", "A4:I4", "A5:I5", "A6:I6", "A8:A9", "B8:B9", "C8:C9",
            "D8:D9", "E8:E9", "F8:F9", "G8:G9", "H8:I8"} <= merged
    for year, row in ROWS.items():
        assert ws[f"A{row}"].value == row - 9
        assert ws[f"B{row}"].value == f"Năm {year}"
        assert ws[f"E{row}"].value == registry.quotas[("DT", year)]
        assert all(ws[f"{c}{row}"].value is None for c in INPUT_COLUMNS)
    assert ws["F14"].value == "TM. BAN THƯỜNG VỤ" and ws["F15"].value == "BÍ THƯ"
    assert ws["A14"].value == "Nơi nhận:"
    assert ws.page_setup.orientation == "landscape" and int(ws.page_setup.paperSize) == 9
    assert ws["A4"].font.name == "Times New Roman" and 12 <= ws["A4"].font.sz <= 13
    assert ws["C10"].font.name == "Times New Roman"


def test_unit_copy_is_protected_and_validated(copies):
    ws = openpyxl.load_workbook(copies["DT"])[FORM_SHEET]
    assert ws.protection.sheet is True
    assert ws.protection.password in (None, "")
    assert ws.protection.insertRows and ws.protection.insertColumns  # True = not allowed while protected
    assert ws.protection.deleteRows and ws.protection.deleteColumns
    assert not ws.protection.selectUnlockedCells
    for row in ROWS.values():
        assert ws[f"E{row}"].protection.locked is True
        for column in INPUT_COLUMNS:
            assert ws[f"{column}{row}"].protection.locked is False, f"{column}{row}"
        assert ws[f"B{row}"].protection.locked is True
    assert ws["A2"].protection.locked is True and ws["C8"].protection.locked is True
    assert ws["F2"].protection.locked is False  # the date line is the unit's to write
    validations = ws.data_validations.dataValidation
    assert sorted(str(dv.sqref) for dv in validations) == ["C10:D12", "F10:I12"]
    for dv in validations:
        assert (dv.type, dv.operator, dv.formula1) == ("whole", "greaterThanOrEqual", "0")
        assert dv.allow_blank and dv.showErrorMessage and dv.showInputMessage
        assert dv.errorStyle in (None, "stop")
        assert dv.promptTitle == "Chỉ nhập số nguyên"
        assert dv.prompt == "Nhập số nguyên không âm, không ghi chữ, không để dấu chấm phẩy."
        assert dv.errorTitle == "Số liệu không hợp lệ" and "số nguyên không âm" in dv.error


def test_token_sheet_is_very_hidden_and_names_the_unit(copies, form):
    wb = openpyxl.load_workbook(copies["KDN"])
    token = wb[TOKEN_SHEET]
    assert token.sheet_state == "veryHidden"
    rows = [(token.cell(r, 1).value, token.cell(r, 2).value) for r in range(1, 5)]
    assert rows == token_rows("KDN", form.edition)


def test_blank_copy(copies):
    wb = openpyxl.load_workbook(copies["blank"])
    assert wb.sheetnames == [FORM_SHEET, GUIDE_SHEET]  # no token: names decide
    ws = wb[FORM_SHEET]
    assert ws["A2"].value == "BCH....." and ws["A2"].protection.locked is False
    assert ws.protection.sheet is True
    for row in ROWS.values():
        for column in "CDEFGHI":
            assert ws[f"{column}{row}"].value is None
            assert ws[f"{column}{row}"].protection.locked is False
    [dv] = ws.data_validations.dataValidation
    assert (str(dv.sqref), dv.type, dv.operator, dv.formula1) == ("C10:I12", "whole", "greaterThanOrEqual", "0")


def _guide_text(path: Path) -> str:
    ws = openpyxl.load_workbook(path)[GUIDE_SHEET]
    return "\n".join(str(c.value) for c in ws["A"] if c.value)


def test_guide_says_deadline_how_to_send_and_what_is_checked(copies, tmp_path, form, registry):
    text = _guide_text(copies["DT"])
    assert "Hạn gửi báo cáo: chậm nhất ngày 10/02/2024." in text
    assert "Đơn vị: Huyện đoàn Dầu Tiếng (mã DT)" in text
    assert "Lưu tệp dưới dạng Excel (.xlsx), giữ nguyên tên tệp \"DT - Huyện đoàn Dầu Tiếng.xlsx\"." in text
    assert "không chèn thêm dòng, cột" in text
    assert "Không đổi tên, không xóa, không thêm trang tính" in text
    assert "Gửi tệp qua email về Ban Tổ chức – Kiểm tra Tỉnh đoàn." in text
    assert "số nguyên, không âm" in text
    assert "Số đoàn viên ưu tú (ĐVUT) không lớn hơn tổng số đoàn viên." in text
    assert "được kết nạp Đảng không lớn hơn số ĐVUT" in text
    assert "ghi đúng theo phân bổ của Tỉnh đoàn" in text
    assert "thay đổi hơn 50% so với năm trước sẽ được hỏi lại" in text
    undated = write_unit_template(tmp_path / "x.xlsx", form, registry, "DT")
    assert "Hạn gửi báo cáo: theo công văn của Tỉnh đoàn" in _guide_text(undated)


def test_province_option_reaches_the_form(tmp_path, form, registry):
    path = write_unit_template(tmp_path / "x.xlsx", form, registry, "DT", province="Bình Phước")
    ws = openpyxl.load_workbook(path)[FORM_SHEET]
    assert ws["A1"].value == "BCH ĐOÀN TỈNH BÌNH PHƯỚC"
    assert ws["A5"].value.endswith("tỉnh Bình Phước")


def test_deadline_formats():
    assert format_deadline("2024-02-10") == "10/02/2024"
    assert format_deadline("10/2/2024") == "10/02/2024"
    assert format_deadline(None) == "theo công văn của Tỉnh đoàn"
    with pytest.raises(ValueError, match="không đúng dạng ngày"):
        format_deadline("mười tháng hai")
    with pytest.raises(ValueError):
        format_deadline("2024-02-30")


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
def test_deadline_any_date_round_trips(day):
    shown = format_deadline(day.isoformat())
    assert shown == f"{day.day:02d}/{day.month:02d}/{day.year}"
    assert format_deadline(shown) == shown


def test_every_printed_unit_line_identifies_its_unit(registry):
    matcher = UnitMatcher(registry)
    for unit in registry.units:
        found = identify(unit_line(unit), "file1.xlsx", matcher)
        assert (found.code, found.source) == (unit.code, "unit_line"), unit.name


# ---------------------------------------------------------------- the pipeline finds it where it was put

def test_reader_locates_the_generated_form_exactly(copies, form):
    result = read_submission(copies["DT"], form)
    located = result.form
    assert located is not None and not result.rejected
    assert located.sheet == FORM_SHEET and located.header_row == 8 and located.year_column == "B"
    assert located.columns == dict(zip(form.metric_keys, "CDEFGHI"))
    assert [(r.row, r.year) for r in located.rows] == [(10, 2021), (11, 2022), (12, 2023)]
    assert located.total_row is None and located.ignored_rows == []
    assert (located.unit_line, located.unit_line_cell) == ("BCH HUYỆN ĐOÀN DẦU TIẾNG", "A2")
    assert result.token is not None and result.token.code == "DT"
    assert result.sheets == (FORM_SHEET, GUIDE_SHEET)  # the token sheet is never mistaken for the form


# ---------------------------------------------------------------- round trip

def test_filled_copies_renamed_are_accepted_by_token(copies, tmp_path, registry):
    inbox = tmp_path / "inbox"
    chosen = ["DT", "KDN", "CDVNS", "DHQTMD"]
    for i, code in enumerate(chosen, start=1):
        fill(copies[code], inbox / f"file{i}.xlsx", seed=i)
    consolidation = run_pipeline(inbox)
    for i, code in enumerate(chosen, start=1):
        outcome = only(consolidation, f"file{i}.xlsx")
        assert outcome.status == "accepted", (code, issue_codes(outcome))
        assert (outcome.unit, outcome.unit_source) == (code, "token")
        assert outcome.errors == 0 and outcome.warnings == 0, issue_codes(outcome)
        for year, row in ROWS.items():
            assert outcome.values[(year, "members_total")] == figures(i)[year]["C"]
            assert outcome.values[(year, "admitted_workers_private")] == figures(i)[year]["I"]
            assert outcome.values[(year, "quota_assigned")] == registry.quotas[(code, year)]
            assert outcome.cells[(year, "quota_assigned")] == f"E{row}"


def test_all_units_once_through_isolated_readers(copies, tmp_path, registry):
    inbox = tmp_path / "inbox"
    for i, unit in enumerate(registry.units, start=1):
        fill(copies[unit.code], inbox / f"file{i}.xlsx", seed=i)
    consolidation = run_pipeline(inbox, isolate=True)
    assert len(consolidation.files) == len(registry.units)
    for i, unit in enumerate(registry.units, start=1):
        outcome = only(consolidation, f"file{i}.xlsx")
        assert outcome.status == "accepted", (unit.code, issue_codes(outcome))
        assert (outcome.unit, outcome.unit_source) == (unit.code, "token")
        assert outcome.warnings == 0, (unit.code, issue_codes(outcome))
    assert not consolidation.missing
    assert all(consolidation.unit_status(u.code) == "accepted" for u in registry.units)


def test_cli_run_accepts_filled_copies(copies, tmp_path):
    from pipeline.cli import main

    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    for i, code in enumerate(["TDM", "PG", "CA"], start=1):
        fill(copies[code], inbox / f"file{i}.xlsx", seed=i)
    result = CliRunner().invoke(main, ["run", "--inbox", str(inbox), "--outbox", str(outbox),
                                       "--registry", str(REGISTRY)])
    assert result.exit_code == 0, result.output
    assert "3/18 đơn vị hợp lệ, 0 trả lại" in result.output
    rows = {r["file"]: r for r in read_csv(only_run_folder(outbox) / "submissions.csv") if r["file"]}
    assert {name: (r["unit_code"], r["status"]) for name, r in rows.items()} == {
        "file1.xlsx": ("TDM", "accepted"), "file2.xlsx": ("PG", "accepted"), "file3.xlsx": ("CA", "accepted")}


def test_filled_blank_copy_is_identified_by_its_unit_line(copies, tmp_path, registry):
    inbox = tmp_path / "inbox"
    quotas = {y: registry.quotas[("PG", y)] for y in YEARS}
    fill(copies["blank"], inbox / "file1.xlsx", seed=3, unit_text="BCH HUYỆN ĐOÀN PHÚ GIÁO", quotas=quotas)
    outcome = only(run_pipeline(inbox), "file1.xlsx")
    assert outcome.status == "accepted" and outcome.warnings == 0, issue_codes(outcome)
    assert (outcome.unit, outcome.unit_source) == ("PG", "unit_line")


def test_token_beats_a_mistyped_unit_line(copies, tmp_path):
    inbox = tmp_path / "inbox"
    path = fill(copies["DT"], inbox / "file1.xlsx", seed=1)
    wb = openpyxl.load_workbook(path)
    wb[FORM_SHEET].protection.sheet = False  # what "Unprotect Sheet" (no password) does
    wb[FORM_SHEET]["A2"] = "BCH HUYỆN ĐOÀN DẦU TIẾNH"
    wb.save(path)
    outcome = only(run_pipeline(inbox), "file1.xlsx")
    assert (outcome.unit, outcome.unit_source, outcome.status) == ("DT", "token", "accepted")


# ---------------------------------------------------------------- tampering

def test_edited_token_is_not_trusted(copies, tmp_path):
    inbox = tmp_path / "inbox"
    path = fill(copies["DT"], inbox / "file1.xlsx", seed=1)
    wb = openpyxl.load_workbook(path)
    assert wb[TOKEN_SHEET]["B2"].value == "DT"
    wb[TOKEN_SHEET]["B2"] = "TDM"  # another unit's code, checksum left as it was
    wb.save(path)
    outcome = only(run_pipeline(inbox), "file1.xlsx")
    assert "token_invalid" in issue_codes(outcome)
    [warning] = [i for i in outcome.issues if i.code == "token_invalid"]
    assert warning.severity == "warning" and warning.sheet == TOKEN_SHEET
    assert "mã kiểm tra không khớp" in warning.message
    assert (outcome.unit, outcome.unit_source) == ("DT", "unit_line")


def test_quota_typed_outside_excel_is_still_checked(copies, tmp_path, registry):
    inbox = tmp_path / "inbox"
    path = fill(copies["BB"], inbox / "file1.xlsx", seed=2)
    wb = openpyxl.load_workbook(path)
    wb[FORM_SHEET]["E11"] = registry.quotas[("BB", 2022)] + 5  # openpyxl ignores sheet protection
    wb.save(path)
    outcome = only(run_pipeline(inbox), "file1.xlsx")
    assert (outcome.unit, outcome.unit_source) == ("BB", "token")
    mismatches = [i for i in outcome.issues if i.code == "quota_mismatch"]
    assert [(i.cell, i.severity) for i in mismatches] == [("E11", "warning")]
    assert f"({registry.quotas[('BB', 2022)]})" in mismatches[0].message


def test_openpyxl_keeps_the_guards_when_a_unit_saves(copies, tmp_path):
    path = fill(copies["DT"], tmp_path / "file1.xlsx", seed=1)
    wb = openpyxl.load_workbook(path)
    ws = wb[FORM_SHEET]
    assert ws.protection.sheet is True and ws["E10"].protection.locked is True
    assert sorted(str(dv.sqref) for dv in ws.data_validations.dataValidation) == ["C10:D12", "F10:I12"]
    assert wb[TOKEN_SHEET].sheet_state == "veryHidden"


# ---------------------------------------------------------------- real programs

@needs_soffice
def test_libreoffice_resave_keeps_the_token(copies, tmp_path):
    filled = fill(copies["TU"], tmp_path / "filled" / "file1.xlsx", seed=4)
    resaved = soffice_convert(filled, "xlsx:Calc MS Excel 2007 XML", tmp_path / "inbox")
    wb = openpyxl.load_workbook(resaved)
    # LibreOffice has no "very hidden": it writes the token sheet back as plain hidden, still out of sight.
    assert wb[TOKEN_SHEET].sheet_state in ("hidden", "veryHidden")
    assert wb[FORM_SHEET].protection.sheet is True
    outcome = only(run_pipeline(tmp_path / "inbox"), "file1.xlsx")
    assert outcome.status == "accepted" and outcome.warnings == 0, issue_codes(outcome)
    assert (outcome.unit, outcome.unit_source) == ("TU", "token")
    assert outcome.values[(2023, "members_total")] == figures(4)[2023]["C"]


@needs_soffice
def test_libreoffice_opens_and_prints_a_copy(copies, tmp_path):
    pdf = soffice_convert(copies["DT"], "pdf", tmp_path)
    assert pdf.stat().st_size > 10_000
    assert pdf.read_bytes().startswith(b"%PDF")
    if PDFTOTEXT is None:
        return
    text = subprocess.run([PDFTOTEXT, "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    for expected in ("BÁO CÁO", "BCH HUYỆN ĐOÀN DẦU TIẾNG", "BCH ĐOÀN TỈNH BÌNH DƯƠNG", "TM. BAN THƯỜNG VỤ",
                     "Năm 2021", "Số TNCCN được kết nạp Đảng", "HƯỚNG DẪN ĐIỀN VÀ GỬI BIỂU MẪU",
                     "chậm nhất ngày 10/02/2024"):
        assert expected in text, expected


@needs_soffice
@pytest.mark.skipif(PDFTOPPM is None, reason="pdftoppm (poppler) is not installed")
def test_first_page_renders_to_png(copies, tmp_path):
    pdf = soffice_convert(copies["DT"], "pdf", tmp_path)
    subprocess.run([PDFTOPPM, "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf),
                    str(tmp_path / "page")], check=True, capture_output=True)
    png = tmp_path / "page.png"
    header = png.read_bytes()[:24]
    assert header.startswith(b"\x89PNG")
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert width > height  # landscape A4


# ---------------------------------------------------------------- command

def test_templates_command_default_folders(tmp_path, monkeypatch, registry):
    monkeypatch.chdir(tmp_path)  # the defaults are relative to where staff run the command
    result = CliRunner().invoke(templates_command, ["--registry", str(REGISTRY), "--deadline", "2024-02-10"])
    assert result.exit_code == 0, result.output
    units = sorted(p.name for p in (tmp_path / "templates" / "bieu_mau").iterdir())
    assert units == sorted(f"{u.code} - {u.name}.xlsx" for u in registry.units)
    assert (tmp_path / "templates" / "bieu_mau_2021_2023.xlsx").is_file()
    assert not (tmp_path / "templates" / "bieu_mau" / "bieu_mau_2021_2023.xlsx").exists()
    assert f"Đã ghi {len(registry.units)} biểu mẫu đơn vị vào thư mục templates/bieu_mau." in result.output
    assert "Biểu mẫu trống (chưa ghi đơn vị): templates/bieu_mau_2021_2023.xlsx" in result.output


def test_templates_command_out_folder_gets_the_blank_too(tmp_path, registry):
    out = tmp_path / "phat_hanh"
    result = CliRunner().invoke(templates_command, ["--registry", str(REGISTRY), "--out", str(out),
                                                    "--province", "Bình Dương"])
    assert result.exit_code == 0, result.output
    assert (out / "bieu_mau_2021_2023.xlsx").is_file()
    assert len(list(out.glob("*.xlsx"))) == len(registry.units) + 1
    assert not (tmp_path / "bieu_mau_2021_2023.xlsx").exists()


def test_templates_command_refuses_a_bad_deadline_or_registry(tmp_path):
    bad_date = CliRunner().invoke(templates_command, ["--registry", str(REGISTRY), "--out", str(tmp_path),
                                                      "--deadline", "10 tháng 2"])
    assert bad_date.exit_code == 2 and "không đúng dạng ngày" in bad_date.output
    assert list(tmp_path.iterdir()) == []
    missing = CliRunner().invoke(templates_command, ["--registry", str(tmp_path / "khong_co.xlsx"),
                                                     "--out", str(tmp_path / "out")])
    assert missing.exit_code == 2 and "Không mở được tệp đơn vị" in missing.output
    assert not (tmp_path / "out").exists()


def test_templates_is_a_tonghop_subcommand():
    from pipeline.cli import main

    if "templates" not in main.commands:
        pytest.skip("templates_command is not registered in pipeline/cli.py yet")
    assert main.commands["templates"] is templates_command


def test_blank_template_writer_alone(tmp_path, form):
    path = write_blank_template(tmp_path / "trong.xlsx", form)
    assert openpyxl.load_workbook(path)[FORM_SHEET]["A2"].value == "BCH....."

"""Feedback copies (`phan_hoi/<unit>.xlsx`) built from real submissions and read back as a unit would."""

from __future__ import annotations

import io
import re
import shutil
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import openpyxl
import pytest
from builders import HAVE_SOFFICE, FormSpec, convert_with_soffice, default_values, needs_soffice, write_openpyxl
from click.testing import CliRunner
from conftest import formula_parts, REGISTRY, only_run_folder, set_mtime

from pipeline.cli import main
from pipeline.outputs.feedback import FEEDBACK_FOLDER, FILLS, SHEET_ISSUES, build_feedback, write_feedback
from pipeline.stages.intake import scan
from pipeline.run import Options, process
from pipeline.outputs.runfolder import reread_sheets
from pipeline.outputs.workbook import build_workbook, sheet_title

INJECTION = '=HYPERLINK("http://x","y")'
LONG_TEXT = "Ghi chú rất dài. " * 2_500  # 42,500 characters: more than a cell holds
MAX_CELL = 32_767
LISTED_INFO = {"unit_from_file_name", "unit_name_conflict", "row_ignored", "year_unexpected"}
SEVERITY_WORD = {"error": "Lỗi", "warning": "Cảnh báo", "info": "Thông tin"}
YEARS = (2021, 2022, 2023)
RECEIVED = 1_706_000_000  # old enough that no "still copying" grace period applies


def _values(registry, code: str) -> dict:
    return default_values(code, quotas={y: registry.quotas[(code, y)] for y in YEARS})


def _put_text(path: Path, cells: dict[str, str]) -> None:
    """Store texts that a spreadsheet would otherwise take for formulas, exactly as typed (a text cell)."""
    book = openpyxl.load_workbook(path)
    sheet = book.active
    for ref, text in cells.items():
        sheet[ref] = text
        sheet[ref].data_type = "s"
    book.save(path)


@dataclass
class Case:
    """One unit's file as it sits in the inbox, and the spec it was written from."""

    spec: FormSpec
    path: Path


@pytest.fixture(scope="module")
def run(tmp_path_factory, registry, form):
    base = tmp_path_factory.mktemp("feedback")
    inbox, staging = base / "inbox", base / "sources"
    inbox.mkdir()
    staging.mkdir()
    cases: dict[str, Case] = {}

    # Thuận An: an error, a warning, a number typed as text, a formula-looking text and an over-long note.
    values = _values(registry, "TA")
    members = values[2021]["members_total"]
    values[2021]["members_total"] = f"{members:,}".replace(",", ".")
    values[2022]["admitted_pupils"] = "mười"
    values[2023]["admitted_students"] = "-"
    spec = FormSpec(unit_line="BCH THÀNH ĐOÀN THUẬN AN", values=values)
    path = write_openpyxl(spec, inbox / "Thuận An.xlsx")
    _put_text(path, {"K3": INJECTION, "M1": LONG_TEXT})
    cases["TA"] = Case(spec, path)

    # Phú Giáo, sent as .xls: the unit line holds formula-looking text, so the file name tells the unit.
    values = _values(registry, "PG")
    values[2023]["admitted_students"] = 12.5
    spec = FormSpec(unit_line=INJECTION, values=values)
    source = write_openpyxl(spec, staging / "Phú Giáo.xlsx")
    _put_text(source, {"A2": INJECTION})
    if HAVE_SOFFICE:
        cases["PG"] = Case(spec, convert_with_soffice(source, "xls", inbox))

    # Dầu Tiếng, sent as .ods: only a warning (a quota that differs from the province's).
    values = _values(registry, "DT")
    values[2022]["quota_assigned"] = registry.quotas[("DT", 2022)] + 5
    spec = FormSpec(unit_line="BCH HUYỆN ĐOÀN DẦU TIẾNG", values=values)
    source = write_openpyxl(spec, staging / "Dầu Tiếng.xlsx")
    if HAVE_SOFFICE:
        cases["DT"] = Case(spec, convert_with_soffice(source, "ods", inbox))

    # Bàu Bàng: a damaged file, so there is no sheet to copy.
    broken = inbox / "Bàu Bàng.xlsx"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    cases["BB"] = Case(FormSpec(), broken)

    # Bến Cát is clean; Bắc Tân Uyên has only a note (unit told from the file name): neither gets a copy.
    write_openpyxl(FormSpec(unit_line="BCH THÀNH ĐOÀN BẾN CÁT", values=_values(registry, "BC")), inbox / "Bến Cát.xlsx")
    write_openpyxl(FormSpec(values=_values(registry, "BTU")), inbox / "Bắc Tân Uyên.xlsx")

    for i, path in enumerate(sorted(inbox.iterdir())):
        set_mtime(path, RECEIVED + 60 * i)
    consolidation = process(scan(inbox), Options(), registry, form)
    out = base / "out"
    out.mkdir()
    paths = write_feedback(consolidation, out, reread_sheets(consolidation))
    return {"inbox": inbox, "out": out, "paths": paths, "c": consolidation, "cases": cases, "base": base}


def _listed(outcome) -> list:
    return [i for i in outcome.issues if i.severity != "info" or i.code in LISTED_INFO]


def _book(run, code: str):
    return openpyxl.load_workbook(run["out"] / FEEDBACK_FOLDER / f"{code}.xlsx")


def _facts(sheet) -> dict[str, str]:
    """Label → value of the lines above the issue table ("Đơn vị:" → "Thành đoàn Thuận An (TA)")."""
    return {row[0].value: row[3].value for row in sheet.iter_rows(max_row=_header_row(sheet) - 1)
            if isinstance(row[0].value, str) and row[0].value.endswith(":")}


def _header_row(sheet) -> int:
    return next(c.row for c in sheet["A"] if c.value == "STT")


def _issue_rows(sheet) -> list[tuple]:
    rows = []
    for row in sheet.iter_rows(min_row=_header_row(sheet) + 1, max_col=6):
        if row[0].value is None:
            break
        rows.append(tuple("" if c.value is None else c.value for c in row))
    return rows


def _filled(sheet) -> dict[str, str]:
    return {c.coordinate: c.fill.fgColor.rgb for row in sheet.iter_rows() for c in row
            if c.fill.fill_type == "solid"}


def _argb(colour: str) -> str:
    return "FF" + colour.lstrip("#").upper()


def _worst(issues) -> str:
    return min((i.severity for i in issues), key=("error", "warning", "info").index)


def test_a_copy_for_every_unit_with_errors_or_warnings_and_no_other(run):
    expected = {"TA", "BB"} | ({"PG", "DT"} if HAVE_SOFFICE else set())
    assert {p.name for p in run["paths"]} == {f"{code}.xlsx" for code in expected}
    assert all(p.parent == run["out"] / FEEDBACK_FOLDER and p.exists() for p in run["paths"])
    assert {p.name for p in (run["out"] / FEEDBACK_FOLDER).iterdir()} == {p.name for p in run["paths"]}
    submissions = run["c"].submissions
    assert submissions["BC"].issues == [] and [i.code for i in submissions["BTU"].issues] == ["unit_from_file_name"]


def test_first_sheet_names_unit_file_and_verdict(run):
    c = run["c"]
    verdicts = {"TA": "Trả lại – cần sửa", "BB": "Trả lại – cần sửa", "PG": "Trả lại – cần sửa",
                "DT": "Có cảnh báo"}
    for code in run["cases"]:
        book = _book(run, code)
        assert book.sheetnames[0] == SHEET_ISSUES
        facts = _facts(book[SHEET_ISSUES])
        unit = c.registry.unit(code)
        assert facts["Đơn vị:"] == f"{unit.name} ({code})"
        assert facts["Tệp:"] == c.submissions[code].name
        assert facts["Kết luận:"] == verdicts[code]
        sheet = book[SHEET_ISSUES]
        assert [c.value for c in sheet[_header_row(sheet)]][:6] == [
            "STT", "Ô", "Mức độ", "Nội dung", "Giá trị ghi", "Giá trị đúng / yêu cầu"]


def test_issue_rows_are_the_outcome_issues(run):
    c = run["c"]
    for code in run["cases"]:
        outcome = c.submissions[code]
        expected = [(n, i.cell, SEVERITY_WORD[i.severity], i.message, i.found, i.expected)
                    for n, i in enumerate(_listed(outcome), start=1)]
        assert expected, code
        assert _issue_rows(_book(run, code)[SHEET_ISSUES]) == expected, code
    ta = run["cases"]["TA"].spec
    issues = {(i.code, i.severity, i.cell) for i in c.submissions["TA"].issues}
    assert ("value_not_number", "error", ta.cell_of(2022, "admitted_pupils")) in issues
    assert ("value_blank", "warning", ta.cell_of(2023, "admitted_students")) in issues


def test_problem_cells_and_only_those_are_coloured_and_commented(run):
    c = run["c"]
    for code in run["cases"]:
        outcome = c.submissions[code]
        book = _book(run, code)
        if not outcome.grid:
            continue
        sheet = book[book.sheetnames[1]]
        by_cell: dict[str, list] = {}
        for issue in _listed(outcome):
            if issue.cell and issue.sheet == outcome.sheet:
                by_cell.setdefault(issue.cell, []).append(issue)
        assert by_cell, code
        assert _filled(sheet) == {cell: _argb(FILLS[_worst(issues)]) for cell, issues in by_cell.items()}, code
        commented = {c.coordinate: c.comment.text for row in sheet.iter_rows() for c in row if c.comment}
        assert set(commented) == set(by_cell), code
        for cell, issues in by_cell.items():
            for issue in issues:
                assert issue.message in commented[cell], (code, cell)


def test_cell_addresses_in_the_table_lead_to_the_cell(run):
    book = _book(run, "TA")
    sheet, grid_title = book[SHEET_ISSUES], book.sheetnames[1]
    header = _header_row(sheet)
    for index, issue in enumerate(_listed(run["c"].submissions["TA"])):
        link = sheet.cell(header + 1 + index, 2).hyperlink
        assert link is not None and link.target is None
        assert link.location == f"'{grid_title}'!{issue.cell}"


def test_submitted_sheet_holds_the_values_as_received(run):
    outcome = run["c"].submissions["TA"]
    book = _book(run, "TA")
    assert book.sheetnames == [SHEET_ISSUES, "Biểu mẫu"]
    sheet = book["Biểu mẫu"]
    for r, row in enumerate(outcome.grid, start=1):
        for col, value in enumerate(row, start=1):
            cell = sheet.cell(r, col)
            if value in ("", None):
                assert cell.value is None, cell.coordinate
            elif isinstance(value, str):
                assert (cell.data_type, cell.value) == ("s", value[:MAX_CELL - 1] + "…" if len(value) > MAX_CELL
                                                        else value), cell.coordinate
            else:
                assert cell.data_type == "n" and cell.value == value, cell.coordinate
    spec = run["cases"]["TA"].spec
    typed = sheet[spec.cell_of(2021, "members_total")]
    assert typed.data_type == "s" and re.fullmatch(r"\d{1,3}(\.\d{3})+", typed.value)
    number = sheet[spec.cell_of(2022, "members_total")]
    assert number.data_type == "n" and number.value == spec.values[2022]["members_total"]
    assert sheet["M1"].data_type == "s" and len(sheet["M1"].value) == MAX_CELL
    assert sheet["K3"].value == INJECTION


def test_no_cell_is_a_formula_or_an_outside_link(run):
    for path in run["paths"]:
        assert formula_parts(path) == [], path.name
        book = openpyxl.load_workbook(path)
        for sheet in book.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (path.name, sheet.title, cell.coordinate)
                    if cell.hyperlink is not None:
                        assert cell.hyperlink.target is None and cell.hyperlink.location, cell.coordinate
    grid = _book(run, "TA")["Biểu mẫu"]
    assert (grid["K3"].data_type, grid["K3"].value) == ("s", INJECTION)


@needs_soffice
def test_an_xls_submission_gets_an_xlsx_copy(run):
    case = run["cases"]["PG"]
    assert case.path.suffix == ".xls"
    outcome = run["c"].submissions["PG"]
    assert outcome.name == "Phú Giáo.xls"
    path = run["out"] / FEEDBACK_FOLDER / "PG.xlsx"
    assert zipfile.is_zipfile(path)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == [SHEET_ISSUES, "Biểu mẫu"]
    sheet = book["Biểu mẫu"]
    fraction = sheet[case.spec.cell_of(2023, "admitted_students")]
    assert fraction.value == 12.5 and fraction.fill.fgColor.rgb == _argb(FILLS["error"])
    # The unit line stays the text the unit typed, marked as a note since the file name told the unit.
    assert (sheet["A2"].data_type, sheet["A2"].value) == ("s", INJECTION)
    assert sheet["A2"].fill.fgColor.rgb == _argb(FILLS["info"])
    assert "tên tệp" in sheet["A2"].comment.text
    assert [row[2] for row in _issue_rows(book[SHEET_ISSUES])] == ["Thông tin", "Lỗi"]


@needs_soffice
def test_an_ods_submission_with_warnings_only(run):
    case = run["cases"]["DT"]
    assert case.path.suffix == ".ods"
    book = _book(run, "DT")
    cell = case.spec.cell_of(2022, "quota_assigned")
    assert _filled(book["Biểu mẫu"]) == {cell: _argb(FILLS["warning"])}
    assert _facts(book[SHEET_ISSUES])["Kết luận:"] == "Có cảnh báo"


def test_an_unreadable_file_gets_the_issue_sheet_only(run):
    outcome = run["c"].submissions["BB"]
    assert outcome.grid == [] and outcome.has_errors
    book = _book(run, "BB")
    assert book.sheetnames == [SHEET_ISSUES]
    rows = _issue_rows(book[SHEET_ISSUES])
    assert [(r[2], r[3]) for r in rows] == [(SEVERITY_WORD[i.severity], i.message) for i in _listed(outcome)]


def test_page_set_up_for_printing(run):
    book = _book(run, "TA")
    for sheet in book.worksheets:
        assert sheet.page_setup.orientation == "landscape" and int(sheet.page_setup.paperSize) == 9
        assert sheet.sheet_properties.pageSetUpPr.fitToPage
        assert sheet.page_setup.fitToWidth in (1, None) and sheet.page_setup.fitToHeight == 0
    issues = book[SHEET_ISSUES]
    assert issues.freeze_panes == f"A{_header_row(issues) + 1}"
    assert issues.column_dimensions["D"].width >= 60


def test_sheet_name_is_made_legal_and_kept_apart_from_the_issue_sheet(run, registry):
    c = run["c"]
    outcome = c.submissions["TA"]
    for name in ("Báo cáo phát triển đảng giai đoạn 2021 - 2023 (bản chính)", SHEET_ISSUES):
        renamed = replace(outcome, sheet=name, issues=[i.at(sheet=name) if i.sheet else i for i in outcome.issues])
        book = openpyxl.load_workbook(io.BytesIO(build_feedback(c, renamed)))
        title = sheet_title(name, {SHEET_ISSUES})
        assert book.sheetnames == [SHEET_ISSUES, title] and len(title) <= 31
        cell = run["cases"]["TA"].spec.cell_of(2022, "admitted_pupils")
        assert book[title][cell].fill.fgColor.rgb == _argb(FILLS["error"])
        rows = _issue_rows(book[SHEET_ISSUES])
        links = [book[SHEET_ISSUES].cell(_header_row(book[SHEET_ISSUES]) + 1 + i, 2).hyperlink
                 for i in range(len(rows))]
        assert all(link.location.startswith(f"'{title}'!") for link in links)


def test_same_remarks_as_the_unit_sheet_of_tong_hop(run):
    """The unit and the province board read the same list."""
    workbook = openpyxl.load_workbook(io.BytesIO(build_workbook(run["c"])))
    for code in run["cases"]:
        unit = run["c"].registry.unit(code)
        sheet = workbook[sheet_title("SL - " + unit.short_name, set())]
        header = next(c.row for c in sheet["A"] if c.value == "STT")
        board = [(r[1].value or "", r[2].value, r[3].value) for r in sheet.iter_rows(min_row=header + 1)
                 if r[0].value is not None]
        mine = [(r[1], r[2], r[3]) for r in _issue_rows(_book(run, code)[SHEET_ISSUES])]
        assert mine == board, code


def test_corrected_copy_sent_back_is_accepted(run, registry, form, tmp_path):
    """A unit may fix the coloured cells in the copy itself and mail it back."""
    spec = run["cases"]["TA"].spec
    book = _book(run, "TA")
    sheet = book["Biểu mẫu"]
    sheet[spec.cell_of(2022, "admitted_pupils")] = 3
    sheet[spec.cell_of(2023, "admitted_students")] = 0
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    book.save(inbox / "Thuận An - sửa lại.xlsx")
    outcome = process(scan(inbox), Options(), registry, form).submissions["TA"]
    assert (outcome.status, outcome.unit_source, outcome.sheet) == ("accepted", "unit_line", "Biểu mẫu")
    assert [i for i in outcome.issues if i.severity != "info"] == []
    assert outcome.values[(2021, "members_total")] == int(spec.values[2021]["members_total"].replace(".", ""))
    assert outcome.values[(2022, "admitted_pupils")] == 3


def test_the_command_line_run_writes_the_copies(run, tmp_path):
    inbox = tmp_path / "inbox"
    shutil.copytree(run["inbox"], inbox)
    for source in run["inbox"].iterdir():
        set_mtime(inbox / source.name, source.stat().st_mtime)
    outbox = tmp_path / "outbox"
    result = CliRunner().invoke(main, ["run", "--inbox", str(inbox), "--outbox", str(outbox),
                                       "--registry", str(REGISTRY)])
    assert result.exit_code == 0, result.output
    folder = only_run_folder(outbox) / FEEDBACK_FOLDER
    if not folder.exists():
        pytest.skip("report.write_outputs does not call write_feedback yet: no phan_hoi/ in the run folder")
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in run["paths"])


def test_a_sheet_not_kept_at_first_reading_is_read_again_for_its_feedback_copy(tmp_path, registry):
    """A file whose only remark comes from validation (a quota) travels without its grid; the copy has it."""
    from builders import FormSpec, default_values, write_openpyxl

    from pipeline.outputs.feedback import write_feedback
    from pipeline.stages.intake import scan
    from pipeline.run import Options, process

    quotas = {y: registry.quotas[("DT", y)] for y in (2021, 2022, 2023)}
    values = default_values("DT", quotas=quotas)
    values[2022]["quota_assigned"] += 3
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    spec = FormSpec(unit_line="BCH HUYỆN ĐOÀN DẦU TIẾNG", values=values)
    write_openpyxl(spec, inbox / "dt.xlsx")
    consolidation = process(scan(inbox), Options(registry=REGISTRY))
    outcome = consolidation.submissions["DT"]
    assert [i.code for i in outcome.issues] == ["quota_mismatch"] and outcome.grid == []
    [path] = write_feedback(consolidation, tmp_path / "out", reread_sheets(consolidation))
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Sai lệch cần sửa", "Biểu mẫu"]
    cell = book["Biểu mẫu"][spec.cell_of(2022, "quota_assigned")]
    assert cell.value == values[2022]["quota_assigned"] and "chỉ tiêu" in cell.comment.text.lower()

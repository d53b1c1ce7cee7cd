"""`tong_hop.xlsx` from the bundled sample inbox, read back cell by cell and checked against the CSV exports."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

import openpyxl
import pytest
from builders import SOFFICE, FormSpec, default_values, needs_soffice, write_openpyxl
from conftest import REGISTRY, ROOT, formula_parts, read_csv, run_sample_inbox, sample_submissions, set_mtime

from pipeline.stages.consolidate import admitted_metrics
from pipeline.outputs.feedback import write_feedback
from pipeline.stages.intake import scan
from pipeline.run import Options, process, process_inbox
from pipeline.outputs.runfolder import reread_sheets
from pipeline.core.textnorm import nfc
from pipeline.outputs.workbook import build_workbook, sheet_title

EXPECTED = json.loads((ROOT / "tests" / "sample_inbox_expected.json").read_text(encoding="utf-8"))
FIXED_SHEETS = ["Báo cáo tỉnh", "Tình trạng nộp", "Số liệu đơn vị", "Chỉ tiêu"]
LISTED_INFO = {"unit_from_file_name", "unit_name_conflict", "row_ignored", "year_unexpected"}
SEVERITY_WORD = {"error": "Lỗi", "warning": "Cảnh báo", "info": "Thông tin"}
INJECTION = '=HYPERLINK("http://x","y")'
PDFINFO = shutil.which("pdfinfo")
PDFTOTEXT = shutil.which("pdftotext")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The bundled inbox with the answer key's mtimes, run through the command line."""
    base = tmp_path_factory.mktemp("sample_workbook")
    folder = run_sample_inbox(base)
    return {"inbox": base / "inbox", "folder": folder, "base": base,
            "book": openpyxl.load_workbook(folder / "tong_hop.xlsx")}


@pytest.fixture(scope="module")
def consolidation(sample):
    return process_inbox(sample["inbox"], Options(registry=REGISTRY))


def _current_files(folder: Path) -> dict[str, str]:
    """Unit code → the file that counts for it (its newest, accepted or not)."""
    return {r["unit_code"]: r["file"] for r in read_csv(folder / "submissions.csv")
            if r["unit_code"] and r["status"] in ("accepted", "rejected")}


def _remarks(folder: Path) -> dict[str, list[dict[str, str]]]:
    """Unit code → issues.csv rows of its current file that the workbook lists."""
    current = _current_files(folder)
    remarks: dict[str, list[dict[str, str]]] = {}
    for row in read_csv(folder / "issues.csv"):
        if current.get(row["unit_code"]) == row["file"] and (row["severity"] != "info" or row["code"] in LISTED_INFO):
            remarks.setdefault(row["unit_code"], []).append(row)
    return remarks


def _row_of(sheet, column: str, value: str) -> int:
    return next(c.row for c in sheet[column] if c.value == value)


def _unit_sheets(book) -> dict[str, str]:
    """Unit code → its "SL - …" sheet, read from the sheet's own "Đơn vị:" line."""
    found = {}
    for name in book.sheetnames:
        if name.startswith("SL - "):
            line = book[name].cell(_row_of(book[name], "A", "Đơn vị:"), 2).value
            found[re.search(r"\(([^()]+)\)$", line).group(1)] = name
    return found


def test_sheet_names(sample, registry):
    names = sample["book"].sheetnames
    assert names[:4] == FIXED_SHEETS
    remarks = _remarks(sample["folder"])
    expected = [sheet_title("SL - " + u.short_name, set()) for u in registry.units if u.code in remarks]
    unit_sheets = [n for n in names if n.startswith("SL - ")]
    assert unit_sheets == expected and len(unit_sheets) == 10
    assert min(names.index(n) for n in unit_sheets) > 3
    assert all(len(n) <= 31 for n in names)
    assert len({n.casefold() for n in names}) == len(names)
    # The sample holds a file no unit could be told for; its remarks need a sheet of their own.
    assert "Sai lệch" in names


def test_province_report_totals_equal_totals_csv(sample, form):
    sheet = sample["book"]["Báo cáo tỉnh"]
    totals = {(int(r["year"]), r["metric"]): int(r["value"]) for r in read_csv(sample["folder"] / "totals.csv")}
    assert sheet.cell(_row_of(sheet, "A", form.number_label), 2).value == form.year_header
    for year in form.years:
        row = _row_of(sheet, "B", form.year_label.format(year=year))
        for j, metric in enumerate(form.metric_keys):
            cell = sheet.cell(row, 3 + j)
            assert (cell.data_type, cell.value) == ("n", totals[(year, metric)]), (year, metric)
            assert '"."###' in cell.number_format
    assert any(isinstance(c.value, str) and c.value.startswith("BÁO CÁO") for c in sheet[4])


def test_unit_values_sheet_equals_values_csv(sample, form):
    sheet = sample["book"]["Số liệu đơn vị"]
    headers = [c.value for c in sheet[1]]
    assert headers == ["Mã đơn vị", "Tên đơn vị", "Năm", *[m.label for m in form.metrics], "Tệp", "Trang tính"]
    seen = set()
    province = {}
    for row in sheet.iter_rows(min_row=2, values_only=True):
        if row[0] is None:
            break
        for j, metric in enumerate(form.metric_keys):
            if row[0] == "TỈNH":
                province[(row[2], metric)] = row[3 + j]
            else:
                seen.add((row[0], row[2], metric, row[3 + j], row[-2], row[-1]))
    expected = {(r["unit_code"], int(r["year"]), r["metric"], int(r["value"]), r["file"], r["sheet"])
                for r in read_csv(sample["folder"] / "values.csv")}
    assert seen == expected and len(expected) == 12 * 3 * 7  # 12 accepted units × 3 years × 7 metrics
    totals = {(int(r["year"]), r["metric"]): int(r["value"]) for r in read_csv(sample["folder"] / "totals.csv")}
    assert province == totals


def test_quota_sheet_achievement_is_admitted_over_allocated(sample, registry, form):
    sheet = sample["book"]["Chỉ tiêu"]
    assert [c.value for c in sheet[1]][:7] == ["Mã đơn vị", "Tên đơn vị", "Năm", "Chỉ tiêu Tỉnh đoàn giao",
                                               "Chỉ tiêu đơn vị báo cáo", "Số được kết nạp Đảng", "Tỉ lệ hoàn thành"]
    values: dict[tuple[str, int], dict[str, int]] = {}
    for r in read_csv(sample["folder"] / "values.csv"):
        values.setdefault((r["unit_code"], int(r["year"])), {})[r["metric"]] = int(r["value"])
    admitted_keys = admitted_metrics(form)
    units, province = {}, {}
    for row in sheet.iter_rows(min_row=2, max_col=7, values_only=True):
        if row[0] is None:
            break
        (province if row[0] == "TỈNH" else units)[(row[0], row[2])] = row[3:]
    assert set(units) == {(u.code, y) for u in registry.units for y in form.years}
    for (code, year), (allocated, reported, admitted, achievement) in units.items():
        assert allocated == registry.quotas.get((code, year))
        figures = values.get((code, year))
        if figures is None:
            assert (reported, admitted, achievement) == (None, None, None), (code, year)
            continue
        assert reported == figures["quota_assigned"]
        assert admitted == sum(figures[k] for k in admitted_keys)
        assert achievement == pytest.approx(admitted / allocated), (code, year)
    assert {key[1] for key in province} == set(form.years)
    for (_, year), (allocated, reported, admitted, achievement) in province.items():
        # Over the same units on both sides: those with an allocation and an accepted report.
        year_rows = [v for (code, y), v in units.items() if y == year and v[0] is not None and v[2] is not None]
        assert allocated == sum(v[0] for v in year_rows)
        assert admitted == sum(v[2] or 0 for v in year_rows)
        assert achievement == pytest.approx(admitted / allocated)


def test_each_unit_sheet_lists_the_issues_of_its_current_file(sample):
    book = sample["book"]
    remarks = _remarks(sample["folder"])
    current = _current_files(sample["folder"])
    sheets = _unit_sheets(book)
    assert set(sheets) == set(remarks)
    for code, name in sheets.items():
        sheet = book[name]
        assert sheet.cell(_row_of(sheet, "A", "Tệp:"), 2).value == current[code]
        header = _row_of(sheet, "A", "STT")
        rows = [(r[1] or "", r[2], r[6]) for r in sheet.iter_rows(min_row=header + 1, max_col=7, values_only=True)
                if r[0] is not None]
        assert rows == [(i["cell"], SEVERITY_WORD[i["severity"]], i["code"]) for i in remarks[code]], code
        assert sheet.auto_filter.ref


def test_status_sheet_links_to_each_unit_sheet_and_back(sample, registry):
    book = sample["book"]
    sheet = book["Tình trạng nộp"]
    sheets = _unit_sheets(book)
    header = _row_of(sheet, "A", "STT")
    assert sheet.cell(header, 9).value == "Chi tiết"
    for i, unit in enumerate(registry.units):
        row = header + 1 + i
        assert sheet.cell(row, 2).value == unit.code
        link = sheet.cell(row, 9).hyperlink
        if unit.code in sheets:
            assert sheet.cell(row, 9).value == "Xem sai lệch"
            assert link.location == f"'{sheets[unit.code]}'!A1" and link.target is None
            back = book[sheets[unit.code]]["A1"].hyperlink
            assert back.location == "'Tình trạng nộp'!A1" and back.target is None
        else:
            assert link is None, unit.code


def test_status_sheet_counts_and_highlights_missing_units(sample, registry):
    sheet = sample["book"]["Tình trạng nộp"]
    missing = {r["unit_code"] for r in read_csv(sample["folder"] / "submissions.csv") if r["status"] == "missing"}
    assert missing == set(EXPECTED["missing_units"])
    units = len(registry.units)
    assert sheet["A2"].value.startswith(f"{units - len(missing)}/{units} đơn vị đã nộp")
    header = _row_of(sheet, "A", "STT")
    for i, unit in enumerate(registry.units):
        row = header + 1 + i
        filled = {sheet.cell(row, col).fill.fill_type == "solid" for col in (2, 3, 4)}
        assert filled == {unit.code in missing}, unit.code
        if unit.code in missing:
            assert sheet.cell(row, 4).value == "Chưa nộp"


def test_no_cell_holds_a_formula(sample):
    data = (sample["folder"] / "tong_hop.xlsx").read_bytes()
    assert formula_parts(data) == []
    for sheet in sample["book"].worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate)


def test_submitter_text_never_becomes_a_formula(tmp_path, registry, form):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    values = default_values("DT", quotas={y: registry.quotas[("DT", y)] for y in form.years})
    spec = FormSpec(unit_line="BCH HUYỆN ĐOÀN DẦU TIẾNG", values=values)
    typed = write_openpyxl(spec, inbox / "=SUM(1+1) Dầu Tiếng.xlsx")
    stranger = write_openpyxl(FormSpec(values=values), inbox / "=1+1.xlsx")
    for path, cells in ((typed, {spec.cell_of(2022, "admitted_pupils"): INJECTION}), (stranger, {"A2": INJECTION})):
        book = openpyxl.load_workbook(path)
        for ref, text in cells.items():
            book.active[ref] = text
            book.active[ref].data_type = "s"
        book.save(path)
        set_mtime(path, 1_706_000_000)
    c = process(scan(inbox), Options(), registry, form)
    assert [i.found for i in c.submissions["DT"].issues if i.code == "value_not_number"] == [INJECTION]
    data = build_workbook(c)
    assert formula_parts(data) == []
    book = openpyxl.load_workbook(io.BytesIO(data))
    texts = set()
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate)
                if isinstance(cell.value, str):
                    texts.add(cell.value)
    assert INJECTION in texts and "=SUM(1+1) Dầu Tiếng.xlsx" in texts and "=1+1.xlsx" in texts


def test_many_units_with_remarks_share_one_discrepancy_sheet(consolidation, sample, registry):
    book = openpyxl.load_workbook(io.BytesIO(build_workbook(consolidation, unit_sheet_limit=2)))
    assert not [n for n in book.sheetnames if n.startswith("SL - ")]
    assert book.sheetnames[:4] == FIXED_SHEETS and "Sai lệch" in book.sheetnames
    sheet = book["Sai lệch"]
    assert sheet.auto_filter.ref
    header = _row_of(sheet, "A", "Mã đơn vị")
    assert sheet.auto_filter.ref.startswith(f"A{header}:")
    rows = [(r[0] or "", r[1], r[3] or "", r[4]) for r in sheet.iter_rows(min_row=header + 1, max_col=5,
                                                                          values_only=True) if r[2] is not None]
    remarks = _remarks(sample["folder"])
    listed = [(u.code, i["file"], i["cell"], SEVERITY_WORD[i["severity"]]) for u in registry.units
              for i in remarks.get(u.code, [])]
    unattributed = [("", r["file"], r["cell"], SEVERITY_WORD[r["severity"]])
                    for r in read_csv(sample["folder"] / "issues.csv") if not r["unit_code"]
                    and r["file"] in {n for (n, _), e in sample_submissions().items() if e["status"] == "rejected"}]
    assert rows == listed + unattributed and unattributed
    status = book["Tình trạng nộp"]
    top = _row_of(status, "A", "STT")
    links = {status.cell(r, 2).value: status.cell(r, 9).hyperlink for r in range(top + 1, top + 19)}
    assert {code for code, link in links.items() if link is not None} == set(remarks)
    assert {link.location for link in links.values() if link is not None} == {"'Sai lệch'!A1"}


# ---------------------------------------------------------------- known defects of pipeline/outputs/workbook.py

def _blank_cell_colour(sheet, cell) -> str | None:
    """The fill a spreadsheet gives an empty cell by the sheet's conditional formats (blank compares as 0)."""
    rules = []
    for formatting in sheet.conditional_formatting:
        if cell.coordinate in formatting.sqref:
            rules.extend(formatting.rules)
    for rule in sorted(rules, key=lambda r: r.priority):
        if rule.type == "containsBlanks":
            return rule.dxf.fill.bgColor.rgb if rule.dxf and rule.dxf.fill else None
        if rule.type != "cellIs":
            continue
        bounds = [float(f) for f in rule.formula]
        matches = {"lessThan": lambda: 0 < bounds[0], "lessThanOrEqual": lambda: 0 <= bounds[0],
                   "between": lambda: bounds[0] <= 0 <= bounds[1], "equal": lambda: bounds[0] == 0,
                   "greaterThanOrEqual": lambda: 0 >= bounds[0], "greaterThan": lambda: 0 > bounds[0]}
        if matches.get(rule.operator, lambda: False)():
            return rule.dxf.fill.bgColor.rgb if rule.dxf and rule.dxf.fill else None
    return None


def test_blank_achievement_is_not_coloured(sample):
    sheet = sample["book"]["Chỉ tiêu"]
    blanks = [row[6] for row in sheet.iter_rows(min_row=2) if row[0].value not in (None, "TỈNH")
              and row[6].value is None]
    assert blanks
    assert [c.coordinate for c in blanks if _blank_cell_colour(sheet, c)] == []


def test_every_text_is_in_the_report_font(sample):
    odd = [(s.title, c.coordinate) for s in sample["book"].worksheets for row in s.iter_rows() for c in row
           if c.value is not None and c.font.name != "Times New Roman"]
    assert odd == []


def test_chart_source_names_fit_their_column(sample, registry):
    sheet = sample["book"]["Chỉ tiêu"]
    top = _row_of(sheet, "B", "Đơn vị")
    names = [r[0] for r in sheet.iter_rows(min_row=top + 1, min_col=2, max_col=2, values_only=True) if r[0]]
    assert len(names) >= 5
    assert sheet.column_dimensions["B"].width >= max(len(n) for n in names)


def test_chart_names_every_unit(sample):
    with zipfile.ZipFile(sample["folder"] / "tong_hop.xlsx") as archive:
        charts = [archive.read(n).decode() for n in archive.namelist() if n.startswith("xl/charts/chart")]
    assert len(charts) == 1
    assert '<c:tickLblSkip val="1"/>' in charts[0]


def test_other_files_table_shows_whole_file_names(sample):
    sheet = sample["book"]["Tình trạng nộp"]
    top = _row_of(sheet, "A", "CÁC TỆP KHÁC TRONG HỘP THƯ (không được tổng hợp)")
    column = next(c.column_letter for c in sheet[top + 1] if c.value == "Tệp")
    names = [sheet[f"{column}{r}"].value for r in range(top + 2, sheet.max_row + 1) if sheet[f"{column}{r}"].value]
    assert names
    assert sheet.column_dimensions[column].width >= max(len(n) for n in names)


# ---------------------------------------------------------------- printing

def _to_pdf(source: Path, outdir: Path) -> Path:
    profile = Path(tempfile.mkdtemp(prefix="lo_", dir="/tmp"))
    try:
        subprocess.run([SOFFICE, "--headless", "--norestore", f"-env:UserInstallation={profile.as_uri()}",
                        "--convert-to", "pdf", "--outdir", str(outdir), str(source)],
                       capture_output=True, text=True, timeout=180, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return outdir / f"{source.stem}.pdf"


def _pages(pdf: Path) -> int:
    if PDFINFO is None:
        return 1 if pdf.stat().st_size > 1000 else 0
    info = subprocess.run([PDFINFO, str(pdf)], capture_output=True, text=True, check=False).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


def _text(pdf: Path) -> str | None:
    if PDFTOTEXT is None:
        return None
    return nfc(subprocess.run([PDFTOTEXT, "-layout", str(pdf), "-"], capture_output=True, text=True,
                              check=False).stdout)


@needs_soffice
def test_workbook_and_a_feedback_copy_print_to_pdf(sample, consolidation, tmp_path):
    pdf = _to_pdf(sample["folder"] / "tong_hop.xlsx", tmp_path)
    assert pdf.exists() and _pages(pdf) >= len(sample["book"].sheetnames)
    text = _text(pdf)
    if text is not None:
        assert "BÁO CÁO" in text and "TÌNH TRẠNG NỘP BÁO CÁO" in text and "Thành đoàn Dĩ An" in text
    copies = write_feedback(consolidation, tmp_path / "run", reread_sheets(consolidation))
    copy = next(p for p in copies if p.stem == "DHBD")
    pdf = _to_pdf(copy, tmp_path)
    assert pdf.exists() and _pages(pdf) >= 2
    text = _text(pdf)
    if text is not None:
        assert "KẾT QUẢ KIỂM TRA BÁO CÁO" in text and "Đoàn Trường Đại học Bình Dương (DHBD)" in text
        assert "không có" in text


def test_workbook_is_packed_at_the_fast_level_and_zlib_keeps_its_default(consolidation):
    import struct
    import zlib

    from pipeline.outputs.workbook import WORKBOOK_DEFLATE_LEVEL

    data = build_workbook(consolidation)
    assert zlib.Z_DEFAULT_COMPRESSION == -1
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        member = archive.getinfo("xl/worksheets/sheet1.xml")
        content = archive.read(member)
    name_length, extra_length = struct.unpack_from("<HH", data, member.header_offset + 26)
    start = member.header_offset + 30 + name_length + extra_length
    stored = data[start:start + member.compress_size]
    packer = zlib.compressobj(WORKBOOK_DEFLATE_LEVEL, zlib.DEFLATED, -15)
    assert stored == packer.compress(content) + packer.flush()

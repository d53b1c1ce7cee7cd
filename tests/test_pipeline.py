"""Real workbooks through the library: layouts, producers, and every rule with its exact cell."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import (
    Formula,
    FormSpec,
    convert_with_soffice,
    convert_with_ssconvert,
    default_values,
    needs_soffice,
    needs_ssconvert,
    write_openpyxl,
    write_xlsxwriter,
)
from conftest import REGISTRY, set_mtime

from pipeline.stages.intake import scan
from pipeline.run import Options, process

DT_LINE = "BCH HUYỆN ĐOÀN DẦU TIẾNG"


@pytest.fixture
def clean_values(registry):
    quotas = {y: registry.quotas[("DT", y)] for y in (2021, 2022, 2023)}
    return default_values("DT", quotas=quotas)


@pytest.fixture
def judge(tmp_path, registry, form):
    """Run the library on the given files (paths inside one inbox) and return outcomes by file name."""

    def run(*paths: Path):
        inbox = paths[0].parent
        result = process(scan(inbox), Options(), registry, form)
        return result, {o.name: o for o in result.files}

    return run


def write(spec: FormSpec, folder: Path, name: str, writer=write_openpyxl) -> Path:
    folder.mkdir(exist_ok=True)
    return writer(spec, folder / name)


def codes(outcome) -> list[tuple[str, str, str]]:
    return [(i.code, i.severity, i.cell) for i in outcome.issues]


def test_clean_form_is_accepted_with_exact_values_and_cells(tmp_path, judge, clean_values):
    spec = FormSpec(unit_line=DT_LINE, values=clean_values)
    path = write(spec, tmp_path / "inbox", "dau_tieng.xlsx")
    result, files = judge(path)
    outcome = files["dau_tieng.xlsx"]
    assert (outcome.status, outcome.unit, outcome.unit_source) == ("accepted", "DT", "unit_line")
    assert outcome.issues == []
    assert outcome.sheet == "Biểu mẫu"
    for year, row in clean_values.items():
        for metric, value in row.items():
            assert outcome.values[(year, metric)] == value
            assert outcome.cells[(year, metric)] == spec.cell_of(year, metric)
    assert result.totals[(2022, "members_total")] == clean_values[2022]["members_total"]


LAYOUTS = {
    "title_offset": dict(title_rows=4),
    "three_row_header": dict(header_rows=3),
    "instruction_sheet_first": dict(instruction_sheet=True),
    "year_labels_lower": dict(year_labels="năm"),
    "year_labels_numbers": dict(year_labels="number"),
    "year_labels_text": dict(year_labels="text"),
    "inserted_blank_and_note_rows": dict(inserted_rows=[None, "Ghi chú: số liệu tính đến 31/12"]),
    "correct_total_row": dict(total_row="Tổng cộng"),
    "cong_total_row": dict(total_row="Cộng"),
    "everything": dict(title_rows=3, header_rows=3, instruction_sheet=True, year_labels="number",
                       inserted_rows=[None], total_row="Tổng cộng"),
}


@pytest.mark.parametrize("layout", LAYOUTS, ids=list(LAYOUTS))
@pytest.mark.parametrize("writer", [write_openpyxl, write_xlsxwriter], ids=["openpyxl", "xlsxwriter"])
def test_layouts_are_found_at_their_real_cells(layout, writer, tmp_path, judge, clean_values):
    spec = FormSpec(unit_line=DT_LINE, values=clean_values, **LAYOUTS[layout])
    path = write(spec, tmp_path / "inbox", "f.xlsx", writer)
    _, files = judge(path)
    outcome = files["f.xlsx"]
    assert outcome.status == "accepted", codes(outcome)
    assert [i for i in outcome.issues if i.severity != "info"] == []
    for year in (2021, 2022, 2023):
        assert outcome.cells[(year, "outstanding_members")] == spec.cell_of(year, "outstanding_members")
        assert outcome.values[(year, "admitted_workers_private")] == clean_values[year]["admitted_workers_private"]


@needs_soffice
@pytest.mark.parametrize("fmt", ["xls", "ods", "xlsx"])
def test_files_saved_by_libreoffice(fmt, tmp_path, judge, clean_values):
    spec = FormSpec(unit_line=DT_LINE, values=clean_values, total_row="Tổng cộng", instruction_sheet=True)
    source = write(spec, tmp_path / "src", "bao_cao.xlsx")
    path = convert_with_soffice(source, fmt, tmp_path / "inbox")
    _, files = judge(path)
    outcome = files[path.name]
    assert outcome.status == "accepted", codes(outcome)
    assert outcome.format == ("xlsx" if fmt == "xlsx" else fmt)
    assert outcome.cells[(2023, "members_total")] == spec.cell_of(2023, "members_total")
    assert outcome.values[(2023, "members_total")] == clean_values[2023]["members_total"]


@needs_ssconvert
@pytest.mark.parametrize("suffix", [".xls", ".xlsx", ".ods"])
def test_files_saved_by_gnumeric(suffix, tmp_path, judge, clean_values):
    spec = FormSpec(unit_line=DT_LINE, values=clean_values, header_rows=3)
    source = write(spec, tmp_path / "src", "bao_cao.xlsx")
    path = convert_with_ssconvert(source, tmp_path / "inbox" / f"gnumeric{suffix}")
    _, files = judge(path)
    outcome = files[path.name]
    assert outcome.status == "accepted", codes(outcome)
    assert outcome.values[(2021, "quota_assigned")] == clean_values[2021]["quota_assigned"]


def test_real_xlsx_renamed_xls_is_read_by_its_bytes(tmp_path, judge, clean_values):
    path = write(FormSpec(unit_line=DT_LINE, values=clean_values), tmp_path / "inbox", "dau tieng.xls")
    _, files = judge(path)
    assert (files["dau tieng.xls"].status, files["dau tieng.xls"].format) == ("accepted", "xlsx")


def test_numbers_as_text_and_formulas_with_cached_values(tmp_path, judge, clean_values):
    values = {y: dict(v) for y, v in clean_values.items()}
    members = values[2022]["members_total"]
    values[2022]["members_total"] = f"{members:,}".replace(",", ".")
    values[2021]["outstanding_members"] = f" {values[2021]['outstanding_members']} "
    parts = ["admitted_pupils", "admitted_students", "admitted_workers_state", "admitted_workers_private"]
    cached = values[2023]["outstanding_members"]
    values[2023]["outstanding_members"] = Formula("=" + "+".join("{%s}" % p for p in parts) + f"+{cached - sum(values[2023][p] for p in parts)}", cached)
    spec = FormSpec(unit_line=DT_LINE, values=values)
    path = write(spec, tmp_path / "inbox", "f.xlsx", write_xlsxwriter)
    _, files = judge(path)
    outcome = files["f.xlsx"]
    assert outcome.status == "accepted", codes(outcome)
    assert outcome.values[(2022, "members_total")] == members
    assert outcome.values[(2023, "outstanding_members")] == cached


def _rule_case(clean_values, change):
    values = {y: dict(v) for y, v in clean_values.items()}
    change(values)
    return values


RULES = {
    # name: (values change, spec extras, expected (code, severity, (year, metric) or "total:<metric>"), status)
    "blank_is_zero": (lambda v: v[2022].update(admitted_pupils=None), {}, ("value_blank", "warning", (2022, "admitted_pupils")), "accepted"),
    "dash_is_zero": (lambda v: v[2021].update(admitted_students="-"), {}, ("value_blank", "warning", (2021, "admitted_students")), "accepted"),
    "word": (lambda v: v[2023].update(admitted_workers_state="không có"), {}, ("value_not_number", "error", (2023, "admitted_workers_state")), "rejected"),
    "negative": (lambda v: v[2022].update(admitted_students=-3), {}, ("value_negative", "error", (2022, "admitted_students")), "rejected"),
    "fraction": (lambda v: v[2021].update(admitted_pupils=12.5), {}, ("value_fraction", "error", (2021, "admitted_pupils")), "rejected"),
    "outstanding_above_members": (lambda v: v[2022].update(outstanding_members=v[2022]["members_total"] + 1), {},
                                  ("outstanding_exceeds_members", "error", (2022, "outstanding_members")), "rejected"),
    "admitted_above_outstanding": (lambda v: v[2023].update(admitted_pupils=v[2023]["outstanding_members"] + 1), {},
                                   ("admitted_exceeds_outstanding", "warning", (2023, "outstanding_members")), "accepted"),
    "quota_differs": (lambda v: v[2021].update(quota_assigned=v[2021]["quota_assigned"] + 5), {},
                      ("quota_mismatch", "warning", (2021, "quota_assigned")), "accepted"),
    "members_jump": (lambda v: v[2023].update(members_total=v[2022]["members_total"] * 2), {},
                     ("members_change_large", "warning", (2023, "members_total")), "accepted"),
    "total_row_wrong": (lambda v: None, {"total_row": "Tổng cộng", "total_values": "wrong"},
                        ("total_row_mismatch", "warning", "total:admitted_students"), "accepted"),
}


@pytest.mark.parametrize("rule", RULES, ids=list(RULES))
def test_each_rule_at_its_cell(rule, tmp_path, judge, clean_values):
    change, extras, (code, severity, where), status = RULES[rule]
    values = _rule_case(clean_values, change)
    if extras.get("total_values") == "wrong":
        totals = {m: sum(values[y][m] for y in values) for m in values[2021]}
        totals["admitted_students"] += 1
        extras = {**extras, "total_values": totals}
    spec = FormSpec(unit_line=DT_LINE, values=values, **extras)
    path = write(spec, tmp_path / "inbox", "f.xlsx")
    _, files = judge(path)
    outcome = files["f.xlsx"]
    cell = spec.total_cell(where.split(":")[1]) if isinstance(where, str) else spec.cell_of(*where)
    assert (code, severity, cell) in codes(outcome)
    assert outcome.status == status
    issue = next(i for i in outcome.issues if i.code == code)
    assert issue.sheet == "Biểu mẫu" and issue.message and issue.unit == "DT" and issue.file == "f.xlsx"


def test_admitted_sum_and_members_jump_messages(tmp_path, judge, clean_values):
    values = _rule_case(clean_values, lambda v: v[2022].update(members_total=1000, outstanding_members=100))
    values[2021].update(members_total=500)
    values[2022].update(admitted_pupils=60, admitted_students=30, admitted_workers_state=10, admitted_workers_private=5)
    spec = FormSpec(unit_line=DT_LINE, values=values)
    _, files = judge(write(spec, tmp_path / "inbox", "f.xlsx"))
    messages = {i.code: i for i in files["f.xlsx"].issues if i.cell == spec.cell_of(2022, "outstanding_members")
                or i.cell == spec.cell_of(2022, "members_total")}
    assert messages["admitted_exceeds_outstanding"].message == (
        "Năm 2022: tổng số được kết nạp Đảng (105) lớn hơn số đoàn viên ưu tú (100).")
    assert messages["members_change_large"].found == "1.000"
    assert "500 → 1.000" in messages["members_change_large"].message


@pytest.mark.parametrize(("row_years", "code", "year"), [([2021, 2023], "year_missing", 2022),
                                                          ([2021, 2022, 2022, 2023], "year_duplicate", 2022)])
def test_year_rows_missing_or_repeated(row_years, code, year, tmp_path, judge, clean_values):
    spec = FormSpec(unit_line=DT_LINE, values=clean_values, row_years=row_years)
    _, files = judge(write(spec, tmp_path / "inbox", "f.xlsx"))
    outcome = files["f.xlsx"]
    assert outcome.status == "rejected"
    found = [i for i in outcome.issues if i.code == code]
    assert len(found) == 1 and f"{year}" in found[0].message
    if code == "year_duplicate":
        assert found[0].cell == f"B{spec.row_of(2022, 1)}"


def test_form_only_on_hidden_sheet_is_not_found(tmp_path, judge, clean_values):
    from openpyxl import load_workbook

    spec = FormSpec(unit_line=DT_LINE, values=clean_values)
    path = write(spec, tmp_path / "inbox", "hidden.xlsx")
    book = load_workbook(path)
    book.create_sheet("Ghi chú", 0)["A1"] = "Xem trang sau"
    book["Biểu mẫu"].sheet_state = "hidden"
    book.active = 0
    book.save(path)
    _, files = judge(path)
    assert [c for c, _, _ in codes(files["hidden.xlsx"])] == ["form_not_found", "unit_unknown"]


def test_formula_without_cached_value_is_an_error_at_its_cell(tmp_path, judge, clean_values):
    values = {y: dict(v) for y, v in clean_values.items()}
    values[2022]["admitted_students"] = Formula("={admitted_pupils}*2", None)
    spec = FormSpec(unit_line=DT_LINE, values=values)
    _, files = judge(write(spec, tmp_path / "inbox", "f.xlsx"))
    assert ("formula_no_value", "error", spec.cell_of(2022, "admitted_students")) in codes(files["f.xlsx"])


def test_unit_from_file_name_when_unit_line_is_blank(tmp_path, judge, registry):
    quotas = {y: registry.quotas[("PG", y)] for y in (2021, 2022, 2023)}
    spec = FormSpec(unit_line="BCH.....", values=default_values("PG", quotas=quotas))
    _, files = judge(write(spec, tmp_path / "inbox", "Báo cáo Phú Giáo.xlsx"))
    outcome = files["Báo cáo Phú Giáo.xlsx"]
    assert (outcome.unit, outcome.unit_source, outcome.status) == ("PG", "file_name", "accepted")


def test_unknown_unit_is_rejected_with_its_cell(tmp_path, judge, clean_values):
    spec = FormSpec(unit_line="BCH ĐOÀN XÃ ĐẢO NGỌC", values=clean_values)
    _, files = judge(write(spec, tmp_path / "inbox", "bao cao.xlsx"))
    outcome = files["bao cao.xlsx"]
    assert outcome.status == "rejected"
    assert codes(outcome) == [("unit_unknown", "error", "A2")]
    assert "BCH ĐOÀN XÃ ĐẢO NGỌC" in outcome.issues[0].message


def test_newest_file_per_unit_wins_and_older_are_superseded(tmp_path, judge, clean_values, registry):
    inbox = tmp_path / "inbox"
    first = write(FormSpec(unit_line=DT_LINE, values=clean_values), inbox, "dau tieng.xlsx")
    newer_values = {y: dict(v) for y, v in clean_values.items()}
    newer_values[2023]["admitted_pupils"] += 1
    second = write(FormSpec(unit_line=DT_LINE, values=newer_values), inbox, "dau tieng (2).xlsx")
    set_mtime(first, 1_700_000_000)
    set_mtime(second, 1_700_000_500)
    result, files = judge(first, second)
    assert files["dau tieng.xlsx"].status == "superseded"
    assert files["dau tieng (2).xlsx"].status == "accepted"
    assert result.totals[(2023, "admitted_pupils")] == newer_values[2023]["admitted_pupils"]
    # equal times: the name decides
    set_mtime(first, 1_700_000_500)
    _, files = judge(first, second)
    assert files["dau tieng.xlsx"].status == "accepted"  # "dau tieng.xlsx" sorts after "dau tieng (2).xlsx"
    assert files["dau tieng (2).xlsx"].status == "superseded"


def test_rejected_newest_makes_the_unit_rejected(tmp_path, judge, clean_values):
    inbox = tmp_path / "inbox"
    good = write(FormSpec(unit_line=DT_LINE, values=clean_values), inbox, "a.xlsx")
    bad_values = _rule_case(clean_values, lambda v: v[2021].update(admitted_pupils="nhiều"))
    bad = write(FormSpec(unit_line=DT_LINE, values=bad_values), inbox, "b.xlsx")
    set_mtime(good, 1_700_000_000)
    set_mtime(bad, 1_700_000_100)
    result, files = judge(good, bad)
    assert (files["a.xlsx"].status, files["b.xlsx"].status) == ("superseded", "rejected")
    assert result.unit_status("DT") == "rejected"
    assert result.totals[(2021, "members_total")] == 0
    assert "DT" not in result.missing


def test_junk_is_listed_and_ignored(tmp_path, judge, clean_values):
    inbox = tmp_path / "inbox"
    good = write(FormSpec(unit_line=DT_LINE, values=clean_values), inbox, "ok.xlsx")
    for name in ("~$ok.xlsx", "Thumbs.db", "desktop.ini", ".DS_Store", "ghi chu.docx", ".~lock.ok.xlsx#"):
        (inbox / name).write_bytes(b"\x00junk")
    result, files = judge(good)
    assert {n: o.status for n, o in files.items()} == {
        "ok.xlsx": "accepted", "~$ok.xlsx": "ignored", "Thumbs.db": "ignored", "desktop.ini": "ignored",
        ".DS_Store": "ignored", "ghi chu.docx": "rejected", ".~lock.ok.xlsx#": "ignored"}
    assert all(i.code == "file_ignored" and i.severity == "info" for n, o in files.items()
               if n not in ("ok.xlsx", "ghi chu.docx") for i in o.issues)
    # A Word document is read now, whatever its name: this one is not one, and says so.
    assert [i.code for i in files["ghi chu.docx"].issues] == ["file_not_spreadsheet"]


@pytest.mark.parametrize(("content", "code"), [
    (b"", "file_empty"),
    (b"TT,Nam,Tong so\n1,2021,100\n", "file_text"),
    (b"<html><body><table><tr><td>1</td></tr></table></body></html>", "file_html"),
    (b"PK\x03\x04garbage-not-a-real-zip", "file_unreadable"),
])
def test_not_a_workbook(content, code, tmp_path, judge):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = inbox / "Dầu Tiếng.xlsx"
    path.write_bytes(content)
    _, files = judge(path)
    outcome = files["Dầu Tiếng.xlsx"]
    assert [c for c, _, _ in codes(outcome)] == [code]
    assert (outcome.status, outcome.unit) == ("rejected", "DT")


def test_missing_units_are_listed(tmp_path, judge, clean_values, registry):
    result, _ = judge(write(FormSpec(unit_line=DT_LINE, values=clean_values), tmp_path / "inbox", "x.xlsx"))
    assert result.missing == [u.code for u in registry.units if u.code != "DT"]
    assert sum(1 for i in result.issues if i.code == "unit_missing") == len(registry.units) - 1


def test_abbreviated_headers_and_a_longer_year_header_are_recognised(tmp_path, judge):
    """Units shorten labels ("Tổng số ĐV", "Số HS được kết nạp") and write "NĂM BÁO CÁO"."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet["A1"], sheet["A2"] = "BCH ĐOÀN TỈNH BÌNH DƯƠNG", "BCH HUYỆN ĐOÀN PHÚ GIÁO"
    labels = ["STT", "NĂM BÁO CÁO", "Tổng số ĐV", "Số ĐV ưu tú", "Chỉ tiêu được giao", "Số HS được kết nạp",
              "Số SV được kết nạp", "Số TNCCN được kết nạp Đảng"]
    for col, label in enumerate(labels, start=1):
        sheet.cell(5, col, label)
    sheet["H6"], sheet["I6"] = "Khu vực Nhà nước", "Khu vực ngoài nhà nước"
    rows = {2021: [900, 50, 17, 1, 2, 3, 4], 2022: [950, 55, 19, 2, 3, 4, 5], 2023: [990, 60, 20, 3, 4, 5, 6]}
    for offset, (year, numbers) in enumerate(rows.items()):
        sheet.cell(7 + offset, 2, year)
        for col, number in enumerate(numbers, start=3):
            sheet.cell(7 + offset, col, number)
    (tmp_path / "inbox").mkdir()
    path = tmp_path / "inbox" / "pg.xlsx"
    book.save(path)
    _, files = judge(path)
    outcome = files["pg.xlsx"]
    assert outcome.unit == "PG" and outcome.status == "accepted", codes(outcome)
    assert outcome.cells[(2022, "admitted_students")] == "G8"
    assert outcome.values[(2023, "admitted_workers_private")] == 6


def _unit_files(folder: Path, registry, lines: dict[str, str]) -> list[Path]:
    paths = []
    for code, line in lines.items():
        quotas = {y: registry.quotas[(code, y)] for y in (2021, 2022, 2023)}
        paths.append(write(FormSpec(unit_line=line, values=default_values(code, quotas=quotas)), folder, f"{code}.xlsx"))
    return paths


UNIT_LINES = {"DT": DT_LINE, "PG": "BCH HUYỆN ĐOÀN PHÚ GIÁO", "TA": "BCH THÀNH ĐOÀN THUẬN AN"}


@pytest.mark.parametrize("isolate", [True, False])
def test_registry_loaded_while_reading_gives_the_same_result(tmp_path, registry, form, isolate):
    _unit_files(tmp_path / "inbox", registry, UNIT_LINES)
    given = process(scan(tmp_path / "inbox"), Options(isolate=isolate), registry, form)
    loaded = process(scan(tmp_path / "inbox"), Options(registry=REGISTRY, isolate=isolate), None, form)
    assert [(o.name, o.status, o.unit, o.unit_source) for o in loaded.files] == \
        [(o.name, o.status, o.unit, o.unit_source) for o in given.files] == \
        [("DT.xlsx", "accepted", "DT", "unit_line"), ("PG.xlsx", "accepted", "PG", "unit_line"),
         ("TA.xlsx", "accepted", "TA", "unit_line")]
    assert loaded.totals == given.totals
    assert loaded.registry.units == registry.units


def test_files_are_read_without_the_registry_and_identified_after(tmp_path, registry, form):
    """Reading and normalizing need no registry (the workers may start before it is loaded); each
    stage returns a new record, the ones before it stay as they were."""
    from pipeline.stages.identify import UnitMatcher, find_unit
    from pipeline.stages.normalize import read_and_prepare

    paths = _unit_files(tmp_path / "inbox", registry, UNIT_LINES)
    submissions = [only for path in paths for only in read_and_prepare(str(path), form)]
    assert all(s.located and s.numbers.values[(2021, "members_total")] is not None for s in submissions)
    matcher = UnitMatcher(registry)
    findings = [find_unit(s, p.name, matcher, registry, form.edition) for s, p in zip(submissions, paths, strict=True)]
    assert [(f.unit, f.source) for f in findings] == [("DT", "unit_line"), ("PG", "unit_line"), ("TA", "unit_line")]
    assert submissions == [only for path in paths for only in read_and_prepare(str(path), form)]


def test_a_malformed_registry_found_while_reading_stops_the_run_and_its_readers(tmp_path, registry, form):
    import multiprocessing

    from pipeline.core.registry import RegistryError

    _unit_files(tmp_path / "inbox", registry, UNIT_LINES)
    broken = tmp_path / "don_vi.xlsx"
    broken.write_bytes(b"not a workbook")
    with pytest.raises(RegistryError, match="don_vi.xlsx"):
        process(scan(tmp_path / "inbox"), Options(registry=broken), None, form)
    assert multiprocessing.active_children() == []

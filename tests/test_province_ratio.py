"""The province-wide quota achievement: admitted and allocated over the same units, and saying which.

Before, the province rows divided the admissions of the accepted units by the quota of every unit
(the sample inbox, with 9 accepted units then, showed 64,4% where they reached 105,8%). The expected figures
here are worked out from values.csv and the registry workbook alone, not from the pipeline.
"""

from __future__ import annotations

import email
import email.policy
from collections import defaultdict
from pathlib import Path

import openpyxl
import pytest
from conftest import REGISTRY, read_csv, run_sample_inbox

from pipeline.stages.intake import scan
from pipeline.core.registry import Registry
from pipeline.run import Options, process
from pipeline.handout.templates import FORM_SHEET, GUIDE_SHEET, write_all
from pipeline.outputs.workbook import build_workbook

YEARS = (2021, 2022, 2023)
QUOTA_ROWS = {2021: 10, 2022: 11, 2023: 12}  # the year rows of a unit's copy; the quota is column E


def percent(ratio: float) -> str:
    """As the mail prints a ratio: 1.0581 → "105,8%"."""
    return f"{ratio * 100:.1f}".replace(".", ",") + "%"


def thousands(number: int) -> str:
    return f"{number:,}".replace(",", ".")


def registry_quotas() -> tuple[list[str], dict[tuple[str, int], int]]:
    """Unit codes and (code, year) → quota, read straight from the registry workbook."""
    book = openpyxl.load_workbook(REGISTRY, read_only=True)
    codes = [row[0] for row in book["Đơn vị"].iter_rows(min_row=2, values_only=True) if row[0]]
    quotas = {(row[0], int(row[1])): int(row[2])
              for row in book["Chỉ tiêu"].iter_rows(min_row=2, values_only=True) if row[0] and row[2] is not None}
    return codes, quotas


def expected_province(folder: Path) -> dict[int, dict]:
    """Per year, over the accepted units that have an allocation: quota, admitted, ratio, units."""
    codes, quotas = registry_quotas()
    admitted: dict[tuple[str, int], int] = defaultdict(int)
    accepted: set[str] = set()
    for row in read_csv(folder / "values.csv"):
        accepted.add(row["unit_code"])
        if row["metric"].startswith("admitted_"):
            admitted[(row["unit_code"], int(row["year"]))] += int(row["value"])
    expected = {}
    for year in YEARS:
        allocated_units = [code for code in codes if (code, year) in quotas]
        covered = [code for code in allocated_units if code in accepted]
        allocated = sum(quotas[(code, year)] for code in covered)
        admitted_total = sum(admitted[(code, year)] for code in covered)
        expected[year] = {"allocated": allocated, "admitted": admitted_total, "ratio": admitted_total / allocated,
                          "covered": len(covered), "not_covered": len(allocated_units) - len(covered),
                          "allocated_all": sum(quotas[(code, year)] for code in allocated_units),
                          "units_allocated": len(allocated_units)}
    return expected


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    base = tmp_path_factory.mktemp("province_ratio")
    folder = run_sample_inbox(base)
    return {"folder": folder, "inbox": base / "inbox", "expected": expected_province(folder)}


def _sheet_rows(path: Path) -> list[tuple]:
    sheet = openpyxl.load_workbook(path)["Chỉ tiêu"]
    return [row for row in sheet.iter_rows(max_col=7, values_only=True)]


def test_quota_sheet_province_rows_divide_over_the_same_units(sample):
    expected = sample["expected"]
    # The sample's own numbers, so a change in the samples is noticed here too.
    assert (expected[2021]["allocated"], expected[2021]["admitted"]) == (339, 356)
    assert (expected[2021]["covered"], expected[2021]["not_covered"]) == (12, 6)
    rows = _sheet_rows(sample["folder"] / "tong_hop.xlsx")
    province = {row[2]: row for row in rows if row[0] == "TỈNH"}
    assert set(province) == set(YEARS)
    for year, figures in expected.items():
        _, label, _, allocated, _, admitted, ratio = province[year]
        assert (allocated, admitted) == (figures["allocated"], figures["admitted"]), year
        assert ratio == pytest.approx(figures["ratio"], rel=1e-15), year
        assert f"{figures['covered']} đơn vị hợp lệ có chỉ tiêu" in label
    assert percent(province[2021][6]) == "105,0%"  # not 84,0%: 356 over all 18 units' 424


def test_quota_sheet_says_which_units_and_keeps_every_units_quota_apart(sample):
    expected = sample["expected"]
    rows = _sheet_rows(sample["folder"] / "tong_hop.xlsx")
    texts = [row[0] for row in rows if isinstance(row[0], str)]
    assert ("Tỉ lệ tính trên 12 đơn vị hợp lệ có chỉ tiêu (chưa tính 6 đơn vị chưa nộp hoặc bị trả lại)."
            in texts)
    all_units = {row[2]: row for row in rows if isinstance(row[1], str)
                 and row[1].startswith(f"Chỉ tiêu giao cả {expected[2021]['units_allocated']} đơn vị")}
    assert set(all_units) == set(YEARS)
    for year, figures in expected.items():
        row = all_units[year]
        assert "không dùng để tính tỉ lệ" in row[1]
        assert row[3] == figures["allocated_all"]
        assert row[4:] == (None, None, None)  # nothing divides it


def _mail_bodies(folder: Path) -> tuple[str, str]:
    message = email.message_from_bytes((folder / "thu_bao_cao.eml").read_bytes(), policy=email.policy.default)
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


def test_report_mail_quota_table_uses_the_same_units_and_says_which(sample):
    text, page = _mail_bodies(sample["folder"])
    basis = "tính trên 12 đơn vị hợp lệ có chỉ tiêu (chưa tính 6 đơn vị chưa nộp hoặc bị trả lại)"
    for year, figures in sample["expected"].items():
        row = next(line for line in text.splitlines() if line.startswith(f"{year} "))
        cells = row.split(maxsplit=3)
        assert cells[:3] == [str(year), thousands(figures["allocated"]), thousands(figures["admitted"])], row
        assert cells[3].startswith(f"{percent(figures['ratio'])} – {basis}"), row
        all_units = (f"chỉ tiêu giao cả {figures['units_allocated']} đơn vị: {thousands(figures['allocated_all'])} "
                     "(không dùng để tính tỉ lệ)")
        assert all_units in row
        assert f"{percent(figures['ratio'])} – {basis}" in page and all_units in page
    assert "105,0%" in text and "84,0%" not in text and "84,0%" not in page


def test_accepted_unit_without_quota_is_left_out_and_named(sample, registry, form):
    """DT is accepted; without its 2023 quota its 2023 admissions must leave the ratio too."""
    quotas = {key: value for key, value in registry.quotas.items() if key != ("DT", 2023)}
    c = process(scan(sample["inbox"]), Options(), Registry(units=registry.units, quotas=quotas), form)
    assert c.unit_status("DT") == "accepted"
    rows = _sheet_rows_from_bytes(build_workbook(c))
    province = {row[2]: row for row in rows if row[0] == "TỈNH"}
    expected = sample["expected"]
    dt_admitted = sum(c.submissions["DT"].values[(2023, k)] or 0 for k in
                      ("admitted_pupils", "admitted_students", "admitted_workers_state", "admitted_workers_private"))
    allocated = expected[2023]["allocated"] - registry.quotas[("DT", 2023)]
    admitted = expected[2023]["admitted"] - dt_admitted
    assert (province[2023][3], province[2023][5]) == (allocated, admitted)
    assert province[2023][6] == pytest.approx(admitted / allocated, rel=1e-15)
    assert province[2021][6] == pytest.approx(expected[2021]["ratio"], rel=1e-15)
    texts = [row[0] for row in rows if isinstance(row[0], str)]
    assert ("Năm 2023: tỉ lệ tính trên 11 đơn vị hợp lệ có chỉ tiêu (chưa tính 6 đơn vị chưa nộp hoặc bị trả lại); "
            "không tính số kết nạp của 1 đơn vị hợp lệ chưa được giao chỉ tiêu.") in texts
    assert "Năm 2021: tỉ lệ tính trên 12 đơn vị hợp lệ có chỉ tiêu (chưa tính 6 đơn vị chưa nộp hoặc bị trả lại)." \
        in texts


def _sheet_rows_from_bytes(data: bytes) -> list[tuple]:
    import io

    sheet = openpyxl.load_workbook(io.BytesIO(data))["Chỉ tiêu"]
    return [row for row in sheet.iter_rows(max_col=7, values_only=True)]


# ---------------------------------------------------------------- templates: the guide says what the copy does

def _guide_text(path: Path) -> str:
    ws = openpyxl.load_workbook(path)[GUIDE_SHEET]
    return "\n".join(str(c.value) for c in ws["A"] if c.value)


def test_guide_describes_the_quota_column_as_each_copy_has_it(tmp_path, registry, form):
    """PG has no allocation, BB only 2021-2022, DT every year."""
    quotas = {key: value for key, value in registry.quotas.items()
              if key[0] != "PG" and key != ("BB", 2023)}
    paths = write_all(tmp_path, form, Registry(units=registry.units, quotas=quotas), deadline="2024-02-10")
    by_code = {unit.code: path for unit, path in zip(registry.units, paths)}

    for code in ("PG", "BB"):
        book = openpyxl.load_workbook(by_code[code])
        ws = book[FORM_SHEET]
        for row in QUOTA_ROWS.values():
            assert ws[f"E{row}"].value is None, (code, row)
            assert ws[f"E{row}"].protection.locked is False, (code, row)
        assert [str(dv.sqref) for dv in ws.data_validations.dataValidation] == ["C10:I12"]  # E included
        text = _guide_text(by_code[code])
        assert "đã ghi sẵn" not in text and "được khóa; nếu thấy chưa đúng" not in text, code
        assert "\"Chỉ tiêu được giao kết nạp Đảng\" để trống, không khóa" in text, code
        assert "Đơn vị tự ghi chỉ tiêu" in text, code
    assert "Tỉnh đoàn chưa phân bổ chỉ tiêu cho đơn vị" in _guide_text(by_code["PG"])
    bb = _guide_text(by_code["BB"])
    assert (f"năm 2021: {registry.quotas[('BB', 2021)]}, năm 2022: {registry.quotas[('BB', 2022)]} "
            "(chưa có năm 2023)") in bb

    ws = openpyxl.load_workbook(by_code["DT"])[FORM_SHEET]
    for year, row in QUOTA_ROWS.items():
        assert ws[f"E{row}"].value == registry.quotas[("DT", year)]
        assert ws[f"E{row}"].protection.locked is True
    dt = _guide_text(by_code["DT"])
    assert "đã ghi sẵn chỉ tiêu Ban Thường vụ Tỉnh đoàn phân bổ cho đơn vị và được khóa" in dt
    assert "\"Chỉ tiêu được giao kết nạp Đảng\" để trống" not in dt

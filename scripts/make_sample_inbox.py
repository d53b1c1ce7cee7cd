"""(Re)write the bundled sample inbox ``inbox/`` and its answer key.

Each sample is a real file written by a real producer: openpyxl and
XlsxWriter directly, LibreOffice (soffice) and Gnumeric (ssconvert) by
opening such a file and saving it in their own format, python-docx for the
plan sent back as a Word document, zipfile and the email package for an
archive and a saved mail holding reports. Together the files cover the
clean cases, the warnings, the errors and the junk that a reporting round
really brings in; ``tests/sample_inbox_expected.json`` records, for every
file, the unit, the outcome and the issues with cells: for a workbook
holding several forms (or a Word table) per sheet under ``sheets``, for an
archive or a mail per member under ``members``.

Git keeps no modification times, so after a fresh checkout run this script
with ``--touch-only`` to restore them (the pipeline uses them to decide
which of a unit's files is newest).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import io
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
# openpyxl writes its XML with lxml when lxml is installed (python-docx brings it) and with the standard
# library otherwise, byte for byte differently: the standard library's always, so the files stay the same.
os.environ["OPENPYXL_LXML"] = "False"
sys.path.insert(0, str(ROOT / "scripts"))

import builders  # noqa: E402
from builders import (  # noqa: E402
    ADMITTED_METRICS,
    BLANK_UNIT_LINE,
    DEFAULT_TITLE_LINES,
    HEADER_LABELS,
    METRIC_COLUMNS,
    METRICS,
    PARENT_LINE,
    PARTY_LINE,
    REPORT_PERIOD,
    REPORT_SUBJECT,
    REPORT_TITLE,
    WORKERS_LABEL,
    WORKERS_SUBLABELS,
    FormSpec,
    Formula,
    default_values,
    freeze_zip_timestamps,
)
from make_registry import UNITS_BY_CODE, quotas  # noqa: E402

INBOX = ROOT / "inbox"
EXPECTED = ROOT / "tests" / "sample_inbox_expected.json"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")

# First-year member counts at each unit's real scale.
MEMBERS_2021: dict[str, int] = {
    "TDM": 18460, "TA": 21030, "DA": 19480, "TU": 12520, "BC": 11040, "BB": 5210,
    "DT": 7830, "BTU": 4610, "PG": 6120, "KCQ": 3910, "KDN": 12840, "CA": 2630,
    "QS": 1050, "DHTDM": 11820, "DHBD": 4720, "DHQTMD": 1460, "CDVNS": 2310, "CDYT": 1650,
}
# Every registry unit sends something this round.
MISSING_UNITS: tuple[str, ...] = ()

Values = dict[int, dict[str, object]]


@dataclass
class SheetOutcome:
    """One sheet (or Word table) of a sample holding the form: a submission of its own, told apart by `sheet`."""

    sheet: str
    unit: str | None
    status: str
    exercises: str
    spec: FormSpec
    issues: list[dict[str, object]] = field(default_factory=list)


@dataclass
class Sample:
    name: str
    # Unit, status and issues of a file read as one submission; None, "" and [] for a file whose
    # submissions are its `sheets` or its `members`.
    unit: str | None
    status: str
    exercises: str
    mtime: datetime
    # "openpyxl" | "xlsxwriter" | "soffice:<fmt>" | "ssconvert" | "python-docx" | "zip" | "mail" | "bytes"
    producer: str
    spec: FormSpec | None = None
    # Writer of the file that soffice/ssconvert open.
    source: str = "openpyxl"
    payload: bytes | None = None
    issues: list[dict[str, object]] = field(default_factory=list)
    nfd_on_disk: bool = False
    # "tcvn3": every text typed in that legacy font (.VnTime), as on an older office PC.
    legacy: str = ""
    # The sheets holding the form, when the key names them (several forms in one workbook, a Word table).
    sheets: list[SheetOutcome] = field(default_factory=list)
    # A container (.zip, saved mail): its members, each a sample written by a deterministic producer.
    members: list[Sample] = field(default_factory=list)
    # A saved mail: its sender's address and its Date, the time its members were received.
    sender: str = ""
    received: datetime | None = None


@dataclass(frozen=True)
class Row:
    """One row the run writes to submissions.csv for a sample: the file, one of its sheets, or a member."""

    name: str
    sheet: str | None
    unit: str | None
    status: str
    issues: list[dict[str, object]]
    spec: FormSpec | None
    when: datetime


def rows_of(sample: Sample, prefix: str = "", when: datetime | None = None) -> list[Row]:
    name, when = prefix + sample.name, when or sample.mtime
    if sample.members:
        return [row for member in sample.members
                for row in rows_of(member, f"{name}/", sample.received or sample.mtime)]
    if sample.sheets:
        return [Row(name, s.sheet, s.unit, s.status, s.issues, s.spec, when) for s in sample.sheets]
    return [Row(name, None, sample.unit, sample.status, sample.issues, sample.spec, when)]


def at(day: int, hour: int, minute: int) -> datetime:
    return datetime(2024, 2, day, hour, minute, tzinfo=TZ)


def place_date(place: str, when: datetime) -> str:
    return f"{place}, ngày {when.day:02d} tháng {when.month:02d} năm {when.year}"


def figures(code: str) -> Values:
    unit = UNITS_BY_CODE[code]
    return default_values(code, profile=unit.profile, quotas=quotas()[code], members=MEMBERS_2021[code])


HINTS: dict[str, tuple[str, str]] = {
    "blank": ("blank or dash counted as zero", "warning"),
    "total": ("total row does not match the sum of the rows", "warning"),
    "quota": ("quota differs from the registry", "warning"),
    "admitted": ("admitted total above outstanding members", "warning"),
    "jump": ("members_total changed by more than 50% from the previous year", "warning"),
    "unit_from_name": ("unit line not filled in; unit taken from the file name", "warning"),
    "from_sender": ("unit line not filled in; unit taken from the mail's sender address", "info"),
    "name_conflict": ("the file name suggests another unit; the unit line decides", "info"),
    "legacy_font": ("text typed in the legacy TCVN3 font, converted to Unicode", "info"),
    "signed_copy": ("a scan recorded as the unit's signed copy, not its report", "info"),
    "not_a_report": ("not a report and tied to no unit", "info"),
    "text": ("text in a number cell", "error"),
    "negative": ("negative number", "error"),
    "fraction": ("not a whole number", "error"),
    "outstanding": ("outstanding members above total members", "error"),
    "missing_year": ("missing year row", "error"),
    "repeated_year": ("repeated year row", "error"),
    "unknown_unit": ("unknown unit", "error"),
}


def issue(kind: str, cell: str | None, detail: str = "") -> dict[str, object]:
    hint, severity = HINTS[kind]
    return {"code_hint": f"{hint} {detail}".strip(), "severity": severity, "cell": cell, "kind": kind}


def thousands(number: int, sep: str) -> str:
    return f"{number:,}".replace(",", sep)


def form(unit_line: str, when: datetime, place: str, signer: str,
         values: Values, **kwargs: object) -> FormSpec:
    return FormSpec(unit_line=unit_line, values=values, place_date=place_date(place, when),
                    signer=signer, saved_at=when.replace(tzinfo=None), **kwargs)


# ---------------------------------------------------------------------------
# the samples


def sample_dt() -> Sample:
    when = at(5, 10, 12)
    spec = form("BCH HUYỆN ĐOÀN DẦU TIẾNG", when, "Dầu Tiếng", "Trần Thị Thu Hà", figures("DT"))
    return Sample("Báo cáo PTĐ - Huyện đoàn Dầu Tiếng.xlsx", "DT", "accepted",
                  "canonical layout, clean figures", when, "openpyxl", spec)


def sample_tdm() -> Sample:
    when = at(2, 15, 40)
    values = figures("TDM")
    # Members typed as text, each year with another thousands separator.
    for year, sep in zip((2021, 2022, 2023), (".", ",", " ")):
        values[year]["members_total"] = thousands(int(values[year]["members_total"]), sep)
    values[2022]["outstanding_members"] = f" {values[2022]['outstanding_members']} "
    values[2023]["admitted_workers_private"] = str(values[2023]["admitted_workers_private"])
    spec = form("BCH THÀNH ĐOÀN THỦ DẦU MỘT", when, "Thủ Dầu Một", "Lê Minh Tuấn", values,
                year_labels="number",
                inserted_rows=["Ghi chú: số liệu tính đến ngày 31/12 hằng năm"])
    return Sample("TDM_bao_cao_PTD_2021-2023.xls", "TDM", "accepted",
                  "LibreOffice .xls; year labels are numbers (2021); members typed as text "
                  "'18.460' / '19,520' / '20 430' style, outstanding ' 612 ' with spaces, one "
                  "admitted count as text; a note row between header and data",
                  when, "soffice:xls", spec)


def sample_bc() -> Sample:
    when = at(6, 8, 55)
    values = figures("BC")
    for year, row in values.items():
        total = int(row["members_total"])
        # Members kept as the sum of three blocks the unit manages separately.
        schools, wards = round(total * 0.31), round(total * 0.42)
        row["members_total"] = Formula(f"={schools}+{wards}+{total - schools - wards}", total)
    spec = form("BCH THÀNH ĐOÀN BẾN CÁT", when, "Bến Cát", "Phạm Quốc Bảo", values,
                total_row="Tổng cộng")
    return Sample("Bao cao PTD Ben Cat.xlsx", "BC", "accepted",
                  "XlsxWriter; members_total is a formula (=a+b+c) with its cached value; "
                  "'Tổng cộng' row of SUM formulas with correct cached sums",
                  when, "xlsxwriter", spec, source="xlsxwriter")


def sample_kcq() -> Sample:
    when = at(7, 16, 20)
    # The bloc's office still types in TCVN3; its sheet tabs, which no .VnTime font draws, are in ASCII.
    spec = form("BCH Đoàn Khối các cơ quan tỉnh", when, "Bình Dương", "Võ Thị Ngọc Hân",
                figures("KCQ"), instruction_sheet=True, hidden_sheet=True,
                inserted_rows=[["A", "B", 1, 2, 3, 4, 5, 6, 7]],
                sheet_name="Bieu mau", instruction_sheet_name="Huong dan", hidden_sheet_name="Ban cu")
    return Sample("KhoiCQ_baocao_PTD.ods", "KCQ", "accepted",
                  "LibreOffice .ods typed in TCVN3 (.VnTime) on an older office PC: every text is the "
                  f"cp1252 reading of the legacy bytes ('{tcvn3(spec.unit_line)}', 'Tæng sè ®oµn viªn'), "
                  "capitals with a tone mark typed as small letters as the ABC layout has them; converted "
                  "to Unicode before anything is matched, with a legacy_font note; 'Huong dan' sheet "
                  "first, then a hidden sheet 'Ban cu' holding an older copy of the form with other "
                  "numbers, then the form (2nd visible sheet); a column-number row 'A B 1 2 3 4 5 6 7' "
                  "between header and data",
                  when, "soffice:ods", spec, legacy="tcvn3", issues=[issue("legacy_font", None)])


def samples_tu() -> list[Sample]:
    first_when, second_when = at(3, 9, 30), at(8, 14, 5)
    final = figures("TU")
    draft = {year: dict(row) for year, row in final.items()}
    draft[2023]["outstanding_members"] = int(final[2023]["outstanding_members"]) - 14
    draft[2023]["admitted_workers_private"] = int(final[2023]["admitted_workers_private"]) - 3
    old = form("BCH THÀNH ĐOÀN TÂN UYÊN", first_when, "Tân Uyên", "Nguyễn Hoàng Phúc", draft)
    new = form("BCH THÀNH ĐOÀN TÂN UYÊN", second_when, "Tân Uyên", "Nguyễn Hoàng Phúc", final,
               header_rows=3)
    return [
        Sample("TanUyen_BC_PTD.xlsx", "TU", "superseded",
               "first, clean submission; replaced by TanUyen_BC_PTD_lan2.xlsx (newer mtime, sorts later)",
               first_when, "openpyxl", old),
        Sample("TanUyen_BC_PTD_lan2.xlsx", "TU", "accepted",
               "LibreOffice .xlsx re-submission with corrected 2023 figures; 3-row header "
               "('Số TNCCN được kết nạp' / 'Đảng' / sub-labels), data from row 11",
               second_when, "soffice:xlsx", new, source="xlsxwriter"),
    ]


def sample_da() -> Sample:
    when = at(9, 11, 2)
    values = figures("DA")
    # 2022's outstanding cell got the number sent to the party-awareness class instead.
    admitted = sum(int(values[2022][m]) for m in ADMITTED_METRICS)
    values[2022]["outstanding_members"] = admitted - 7
    spec = form("BCH THÀNH ĐOÀN DĨ AN", when, "Dĩ An", "Đặng Văn Lực", values, year_labels="năm")
    return Sample("Báo cáo Dĩ An.xlsx", "DA", "accepted",
                  "Gnumeric .xlsx; lowercase year labels 'năm 2022'; in 2022 the admitted total (F:I) "
                  "is 7 above the outstanding members in D11",
                  when, "ssconvert", spec,
                  issues=[issue("admitted", spec.cell_of(2022, "outstanding_members"))])


def sample_bb() -> Sample:
    when = at(4, 17, 45)
    values = figures("BB")
    values[2021]["admitted_pupils"] = None
    values[2021]["admitted_students"] = "-"
    values[2022]["admitted_students"] = "-"
    values[2023]["admitted_students"] = "–"
    values[2023]["admitted_workers_state"] = None

    def as_number(cell: object) -> int:
        return cell if isinstance(cell, int) else 0

    totals = {metric: sum(as_number(values[y][metric]) for y in values) for metric in values[2021]}
    # The hand-typed total for members is 100 short.
    totals["members_total"] = int(totals["members_total"]) - 100
    spec = form("BCH HUYỆN ĐOÀN BÀU BÀNG", when, "Bàu Bàng", "Huỳnh Thanh Sang", values,
                total_row="Cộng", total_values=totals)
    blanks = [spec.cell_of(2021, "admitted_pupils"), spec.cell_of(2021, "admitted_students"),
              spec.cell_of(2022, "admitted_students"), spec.cell_of(2023, "admitted_students"),
              spec.cell_of(2023, "admitted_workers_state")]
    return Sample("BauBang-PTD 2021-2023.xls", "BB", "accepted",
                  "Gnumeric .xls; empty cells, '-' and '–' meaning 0; a 'Cộng' row typed by hand "
                  "whose members total is 100 short",
                  when, "ssconvert", spec,
                  issues=[issue("blank", cell) for cell in blanks]
                  + [issue("total", spec.total_cell("members_total"))])


def sample_btu() -> Sample:
    when = at(6, 21, 30)
    spec = FormSpec(unit_line=BLANK_UNIT_LINE, values=figures("BTU"),
                    place_date="............, ngày ..... tháng ..... năm 2024",
                    signer="Lâm Quốc Việt", saved_at=when.replace(tzinfo=None))
    return Sample("Bắc Tân Uyên - báo cáo phát triển đảng.xlsx", "BTU", "accepted",
                  "unit line still the blank 'BCH.....' and the date line unfilled; only the file "
                  "name tells the unit",
                  when, "openpyxl", spec,
                  issues=[issue("unit_from_name", "A2")])


def sample_kdn() -> Sample:
    when = at(10, 8, 20)
    values = figures("KDN")
    # New industrial parks joined the bloc in 2023.
    values[2023]["members_total"] = round(int(values[2022]["members_total"]) * 1.62)
    values[2023]["outstanding_members"] = round(int(values[2022]["outstanding_members"]) * 1.25)
    registry_quota = quotas()["KDN"][2022]
    values[2022]["quota_assigned"] = registry_quota + 8
    # In this sample the college of the VSIP industrial park belongs to the bloc: its form, as the
    # school gave it to the bloc on 09/02, travels on a second sheet. The school sends its own, later.
    member = cdvns_form(at(9, 14, 0), sheet_name="CĐ VN-Singapore")
    spec = form("BCH ĐOÀN KHỐI DOANH NGHIỆP TỈNH", when, "Bình Dương", "Bùi Thị Kim Ngân", values,
                title_rows=4, more_forms=[member])
    assert spec.header_row == 12
    own = sample_cdvns()
    assert (when, "Báo cáo PTĐ - Đoàn Khối Doanh nghiệp.xlsx") < (own.mtime, own.name)
    return Sample("Báo cáo PTĐ - Đoàn Khối Doanh nghiệp.xlsx", None, "",
                  "XlsxWriter workbook holding two forms, each its own submission (rows told apart by "
                  "'sheet'): the bloc's own and a member unit's; file name stored in NFD on disk (as "
                  "macOS writes it)",
                  when, "xlsxwriter", spec, source="xlsxwriter", nfd_on_disk=True, sheets=[
                      SheetOutcome(
                          spec.sheet_name, "KDN", "accepted",
                          "the bloc's own form, first sheet; four extra title lines so the header starts "
                          "at row 12 (data rows 14-16); members jump +62 % from 2022 to 2023; 2022 quota "
                          f"reported {registry_quota + 8} where the registry says {registry_quota}",
                          spec, [issue("quota", spec.cell_of(2022, "quota_assigned")),
                                 issue("jump", spec.cell_of(2023, "members_total"))]),
                      SheetOutcome(
                          member.sheet_name, "CDVNS", "superseded",
                          "the member college's form (Đoàn trường CĐ Việt Nam - Singapore) as the school "
                          "gave it to the bloc on 09/02, 12.5 included: a submission of CDVNS, superseded "
                          f"because the school's own '{own.name}' is newer ({own.mtime:%d/%m %H:%M} against "
                          f"this file's {when:%d/%m %H:%M}) and counts instead, rejected for the same "
                          "fraction; the fraction is reported at its cell on this sheet, and the file name, "
                          "which names the bloc, differs from the unit line (info)",
                          member, [issue("fraction", member.cell_of(2023, "admitted_students")),
                                   issue("name_conflict", "A2")]),
                  ])


def sample_ca() -> Sample:
    when = at(8, 9, 45)
    values = figures("CA")
    corrected = dict(values[2022])
    corrected["outstanding_members"] = int(corrected["outstanding_members"]) + 6
    corrected["admitted_workers_state"] = int(corrected["admitted_workers_state"]) + 2
    spec = form("BCH ĐOÀN THANH NIÊN CÔNG AN TỈNH", when, "Bình Dương", "Thượng úy Đỗ Minh Khang",
                values, inserted_rows=[None], row_years=[2021, 2022, 2022, 2023],
                repeat_values={2022: corrected})
    return Sample("Doan TN Cong an tinh - BC PTD.xlsx", "CA", "rejected",
                  "Gnumeric .xlsx; a blank row between header and data; the 2022 row appears twice "
                  "with different figures (a correction typed as a new row)",
                  when, "ssconvert", spec,
                  issues=[issue("repeated_year", spec.cell_of(2022, "year", occurrence=1), "2022")])


def samples_dhtdm() -> list[Sample]:
    first_when, second_when = at(2, 10, 5), at(11, 9, 15)
    good = figures("DHTDM")
    swapped = {year: dict(row) for year, row in good.items()}
    for row in swapped.values():
        # The re-sent copy has the first two figure columns swapped.
        row["members_total"], row["outstanding_members"] = row["outstanding_members"], row["members_total"]
    old = form("BCH ĐOÀN TRƯỜNG ĐẠI HỌC THỦ DẦU MỘT", first_when, "Thủ Dầu Một",
               "Nguyễn Thị Mỹ Linh", good)
    new = form("BCH ĐOÀN TRƯỜNG ĐẠI HỌC THỦ DẦU MỘT", second_when, "Thủ Dầu Một",
               "Nguyễn Thị Mỹ Linh", swapped)
    return [
        Sample("Báo cáo PTĐ ĐH Thủ Dầu Một.xlsx", "DHTDM", "superseded",
               "XlsxWriter; clean first submission, replaced by a newer file that is rejected; the unit "
               "line contains 'THỦ DẦU MỘT', an alias of TDM as well",
               first_when, "xlsxwriter", old, source="xlsxwriter"),
        Sample("Báo cáo PTĐ ĐH Thủ Dầu Một_sửa lại.xlsx", "DHTDM", "rejected",
               "LibreOffice .xlsx re-submission with columns C and D swapped: outstanding members "
               "above total members on every row; the unit's newest file is rejected although the "
               "older one was fine",
               second_when, "soffice:xlsx", new,
               issues=[issue("outstanding", new.cell_of(year, "outstanding_members"))
                       for year in (2021, 2022, 2023)]),
    ]


def sample_dhbd() -> Sample:
    when = at(5, 15, 20)
    values = figures("DHBD")
    values[2021]["admitted_pupils"] = "không có"
    spec = form("BCH ĐOÀN TRƯỜNG ĐẠI HỌC BÌNH DƯƠNG", when, "Bình Dương", "Trương Công Danh", values)
    return Sample("DHBD - Bao cao PTD.xls", "DHBD", "rejected",
                  "LibreOffice .xls; the words 'không có' in a number cell",
                  when, "soffice:xls", spec,
                  issues=[issue("text", spec.cell_of(2021, "admitted_pupils"))])


def sample_dhqtmd() -> Sample:
    when = at(7, 10, 10)
    values = figures("DHQTMD")
    values[2022]["admitted_students"] = -2
    spec = form("BCH ĐOÀN TRƯỜNG ĐH QUỐC TẾ MIỀN ĐÔNG", when, "Bình Dương", "Lý Gia Hân", values)
    return Sample("EIU_BaoCaoPTD.xlsx", "DHQTMD", "rejected",
                  "openpyxl; a negative number (-2 admitted students); unit line uses the short form 'ĐH'",
                  when, "openpyxl", spec,
                  issues=[issue("negative", spec.cell_of(2022, "admitted_students"))])


def cdvns_form(when: datetime, **kwargs: object) -> FormSpec:
    values = figures("CDVNS")
    values[2023]["admitted_students"] = 12.5
    return form("BCH ĐOÀN TRƯỜNG CĐ VIỆT NAM - SINGAPORE", when, "Bình Dương", "Phan Thanh Tâm", values,
                **kwargs)


def sample_cdvns() -> Sample:
    when = at(11, 16, 0)
    spec = cdvns_form(when)
    return Sample("CĐ VN-Singapore_báo cáo PTĐ.ods", "CDVNS", "rejected",
                  "LibreOffice .ods; a fraction 12.5 (displayed as 13 by the '#,##0' format)",
                  when, "soffice:ods", spec,
                  issues=[issue("fraction", spec.cell_of(2023, "admitted_students"))])


def sample_cdyt() -> Sample:
    when = at(12, 9, 0)
    spec = form("BCH ĐOÀN TRƯỜNG CAO ĐẲNG Y TẾ BÌNH DƯƠNG", when, "Bình Dương", "Hồ Ngọc Trâm",
                figures("CDYT"), row_years=[2021, 2023])
    return Sample("CDYT_PTD_2021_2023.xls", "CDYT", "rejected",
                  "Gnumeric .xls; the 2022 row is missing (rows 2021 and 2023 only)",
                  when, "ssconvert", spec,
                  issues=[issue("missing_year", None, "2022")])


def sample_unknown() -> Sample:
    when = at(3, 14, 25)
    values = default_values("THPT-HV", profile="college", quotas={2021: 3, 2022: 4, 2023: 4}, members=1180)
    for row in values.values():
        row["admitted_pupils"], row["admitted_students"] = row["admitted_students"], 0
    spec = form("BCH ĐOÀN TRƯỜNG THPT CHUYÊN HÙNG VƯƠNG", when, "Thủ Dầu Một", "Mai Anh Khoa",
                values)
    return Sample("BC PTD truong THPT chuyen Hung Vuong.xlsx", None, "rejected",
                  "XlsxWriter; a school union that is not in the registry; its date line says "
                  "'Thủ Dầu Một', which must not be taken for TDM",
                  when, "xlsxwriter", spec, source="xlsxwriter",
                  issues=[issue("unknown_unit", "A2")])


def sample_ta() -> Sample:
    when = at(7, 15, 35)
    spec = form("BCH THÀNH ĐOÀN THUẬN AN", when, "Thuận An", "Nguyễn Thành Nhân", figures("TA"),
                total_row="Tổng cộng")
    return Sample("KH 45 - Thuận An - báo cáo PTĐ.docx", None, "",
                  "python-docx; the province's plan sent back whole: the plan's own heading "
                  "'BCH ĐOÀN TỈNH BÌNH DƯƠNG', its text and its signature table (Bảng 1), then on a "
                  "landscape last page the unit's heading (the province line again, then 'BCH THÀNH "
                  "ĐOÀN THUẬN AN' above the title) and the form table",
                  when, "python-docx", spec, sheets=[SheetOutcome(
                      "Bảng 2", "TA", "accepted",
                      "the form as Word table 2: a 2-row header of merged cells as in the spreadsheet "
                      "(TT…Chỉ tiêu spanning both rows, 'Số TNCCN được kết nạp Đảng' across its two "
                      "sub-columns), counts typed as text '21.030', a 'Tổng cộng' row (A:B merged) with "
                      "correct sums; the unit's signature table after it (Bảng 3)", spec)])


def sample_pg() -> Sample:
    saved, zipped = at(6, 10, 30), at(6, 11, 5)
    spec = form("BCH HUYỆN ĐOÀN PHÚ GIÁO", saved, "Phú Giáo", "Trịnh Văn Tài", figures("PG"))
    report = Sample("Báo cáo PTĐ Phú Giáo.xlsx", "PG", "accepted",
                    "XlsxWriter, canonical layout, clean figures; the archive's only member",
                    saved, "xlsxwriter", spec, source="xlsxwriter")
    return Sample("Báo cáo PTĐ Phú Giáo.zip", None, "",
                  "zip made on a Mac (Archive Utility): the member's name in UTF-8 (NFD) without the "
                  "UTF-8 flag, and a '__MACOSX/' folder holding the AppleDouble '._Báo cáo PTĐ Phú "
                  "Giáo.xlsx', which is no submission; the report inside is a submission named "
                  "'archive.zip/member.xlsx', received at the archive's time",
                  zipped, "zip", members=[report])


def sample_qs() -> Sample:
    saved, sent, stored = at(9, 15, 5), datetime(2024, 2, 9, 16, 47, 12, tzinfo=TZ), at(12, 8, 10)
    spec = FormSpec(unit_line=BLANK_UNIT_LINE, values=figures("QS"), place_date=place_date("Bình Dương", saved),
                    signer="Đại úy Phạm Văn Hùng", saved_at=saved.replace(tzinfo=None))
    report = Sample("Báo cáo PTĐ 2021-2023.xlsx", "QS", "accepted",
                    "openpyxl; the unit line left as the blank 'BCH.....' and a file name that names no "
                    "unit: the mail's sender, the registry address of Đoàn TN Bộ CHQS tỉnh, tells the unit; "
                    "received at the mail's Date",
                    saved, "openpyxl", spec, issues=[issue("from_sender", "A2")])
    scan = Sample("Bản ký BC PTĐ.pdf", "QS", "ignored",
                  "the signed and stamped copy, scanned to PDF (one page, a grey image): recorded as the "
                  "unit's signed copy, never its report",
                  saved, "bytes", payload=scan_pdf_bytes("QS"), issues=[issue("signed_copy", None)])
    return Sample("Fwd Báo cáo kết quả PTĐ giai đoạn 2021-2023.eml", None, "",
                  "a mail saved from Thunderbird (.eml, CRLF): the unit's secretary forwards from the "
                  f"unit's registry address what an officer sent, form and signed scan attached; Date "
                  f"{format_datetime(sent)}, saved to the inbox days later: the Date is the time received",
                  stored, "mail", members=[report, scan],
                  sender=UNITS_BY_CODE["QS"].email, received=sent)


# ---------------------------------------------------------------------------
# junk


def lock_file_bytes(user: str = "Admin") -> bytes:
    # Office's owner file: length-prefixed ASCII name, then the same name in UTF-16.
    ascii_name = user.encode("ascii")
    return (bytes([len(ascii_name)]) + ascii_name.ljust(53, b" ")
            + len(user).to_bytes(2, "little") + user.encode("utf-16-le").ljust(110, b"\x00"))


def thumbs_db_bytes() -> bytes:
    header = bytes.fromhex("D0CF11E0A1B11AE1") + bytes(16) + bytes.fromhex("3E000300FEFF0900")
    return header.ljust(1536, b"\x00")


def desktop_ini_bytes() -> bytes:
    text = ("\r\n[.ShellClassInfo]\r\nIconResource=C:\\Windows\\System32\\imageres.dll,-112\r\n"
            "[ViewState]\r\nMode=\r\nVid=\r\nFolderType=Documents\r\n")
    return b"\xff\xfe" + text.encode("utf-16-le")


def ds_store_bytes() -> bytes:
    return (b"\x00\x00\x00\x01Bud1" + bytes.fromhex("00001000000008000000100000000C")).ljust(6148, b"\x00")


def pdf_document(objects: list[bytes], info: bytes = b"") -> bytes:
    """A PDF of the given objects (numbered from 1, the catalog first), with its cross-reference table."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, info, xref)
    return bytes(out)


def pdf_bytes() -> bytes:
    text = b"BT /F1 14 Tf 72 770 Td (KE HOACH 45-KH/TDTN-TCKT - Bao cao ket qua phat trien dang 2021-2023) Tj ET"
    return pdf_document([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ])


def scan_pdf_bytes(seed: str) -> bytes:
    """A signed page as an office scanner files it: one greyscale image filling an A4 page, no text layer.

    The picture is coarse but shaped like the form: heading lines, the table grid, the signature and
    the round stamp over it, on slightly uneven paper.
    """
    rng = random.Random(f"scan:{seed}")
    width, height = 248, 351  # A4 at 30 dpi
    page = bytearray([236]) * (width * height)
    for _ in range(900):  # specks of dust on the glass
        page[rng.randrange(width * height)] = rng.randint(150, 215)

    def ink(x0: int, y0: int, x1: int, y1: int, shade: int = 40) -> None:
        for y in range(max(0, y0), min(height, y1)):
            for x in range(max(0, x0), min(width, x1)):
                page[y * width + x] = min(page[y * width + x], shade + rng.randint(0, 30))

    for y in (14, 20, 34, 40, 46):  # heading lines, left and right
        ink(18, y, 18 + rng.randint(60, 90), y + 2)
        ink(140, y, 140 + rng.randint(60, 90), y + 2)
    top, rows = 70, [70, 90, 100, 112, 124, 136]
    for y in rows:  # the table: header and three year rows
        ink(14, y, 234, y + 1)
    for x in (14, 30, 56, 82, 108, 134, 160, 186, 210, 234):
        ink(x, top, x + 1, rows[-1] + 1)
    for y in rows[2:-1]:
        for x in (34, 60, 86, 112, 138, 164, 190, 214):
            ink(x, y + 4, x + rng.randint(10, 18), y + 7, 60)
    for step in range(60):  # the signature
        x = 150 + step
        ink(x, 178 + round(6 * ((step * 7) % 11) / 11), x + 2, 181 + round(6 * ((step * 7) % 11) / 11), 20)
    for angle in range(360):  # the stamp, a ring over the signature (red, scanned grey)
        for radius in (26, 27, 28):
            x = 170 + round(radius * math.cos(angle * 3.14159 / 180))
            y = 182 + round(radius * math.sin(angle * 3.14159 / 180))
            ink(x, y, x + 1, y + 1, 120)
    image = zlib.compress(bytes(page), 9)
    contents = b"q 595 0 0 842 0 0 cm /Im0 Do Q"
    return pdf_document([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /XObject << /Im0 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(contents), contents),
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream"
        % (width, height, len(image), image),
        b"<< /Producer (Canon iR-ADV C3520 III) /Creator (Canon) /CreationDate (D:20240209155800+07'00') >>",
    ], info=b" /Info 6 0 R")


def junk_samples() -> list[Sample]:
    def junk(name: str, when: datetime, payload: bytes, why: str) -> Sample:
        return Sample(name, None, "ignored", why, when, "bytes", payload=payload)

    return [
        junk("~$Báo cáo Dĩ An.xlsx", at(9, 11, 15), lock_file_bytes(),
             "Office lock file left while 'Báo cáo Dĩ An.xlsx' was open"),
        junk("Thumbs.db", at(1, 8, 0), thumbs_db_bytes(), "Windows thumbnail cache (OLE signature)"),
        junk("desktop.ini", at(1, 8, 0), desktop_ini_bytes(), "Windows folder settings"),
        junk(".DS_Store", at(10, 8, 21), ds_store_bytes(), "hidden macOS folder metadata"),
        Sample("KH 45-KH-TĐTN về báo cáo PTĐ.pdf", None, "ignored", "the province's plan as a PDF, not a report",
               at(1, 14, 30), "bytes", payload=pdf_bytes(), issues=[issue("not_a_report", None)]),
    ]


def all_samples() -> list[Sample]:
    return [
        sample_dt(), sample_tdm(), sample_bc(), sample_kcq(), *samples_tu(), sample_da(),
        sample_bb(), sample_btu(), sample_kdn(), sample_ca(), *samples_dhtdm(), sample_dhbd(),
        sample_dhqtmd(), sample_cdvns(), sample_cdyt(), sample_unknown(), sample_ta(), sample_pg(),
        sample_qs(), *junk_samples(),
    ]


# ---------------------------------------------------------------------------
# legacy font, Word, archive, mail

# The only capitals TCVN3 (ABC, VN3) has a code for; the others are typed in .VnTimeH, or as the small letter.
VN3_CAPITALS = "ĂÂÊÔƠƯĐ"


def _tcvn3_codes() -> dict[str, str]:
    from pipeline.core.legacy import _table

    return {letter: legacy for legacy, letter in _table("tcvn3").mapping.items()}


def _glibc_tcvn3(text: str) -> str | None:
    """glibc's TCVN5712-1 bytes of `text` read as cp1252/latin-1, or None where iconv cannot say."""
    if shutil.which("iconv") is None:
        return None
    done = subprocess.run(["iconv", "-f", "utf-8", "-t", "TCVN5712-1"], input=text.encode("utf-8"),
                          capture_output=True, check=False)
    return done.stdout.decode("latin-1") if done.returncode == 0 else None


_TCVN3_TYPED: dict[str, str] = {}


def tcvn3(text: str) -> str:
    """`text` as a cell typed with the TCVN3 font .VnTime holds it: the cp1252 reading of the legacy bytes
    ("BCH Thành Đoàn" → "BCH Thµnh §oµn"). A capital with a tone mark has no code in the ABC layout, so
    it is typed as the small letter. Spelled with the reader's table in reverse and checked against glibc's
    own converter wherever that can encode the text."""
    if text not in _TCVN3_TYPED:
        typed = "".join(ch.lower() if ch.isupper() and not ch.isascii() and ch not in VN3_CAPITALS else ch
                        for ch in unicodedata.normalize("NFC", text))
        codes = _tcvn3_codes()
        spelled = "".join(codes.get(ch, ch) for ch in typed)
        glibc = _glibc_tcvn3(typed)
        assert glibc is None or glibc == spelled, f"TCVN3 of {text!r}: table {spelled!r}, glibc {glibc!r}"
        _TCVN3_TYPED[text] = spelled
    return _TCVN3_TYPED[text]


def pin_saved_at(path: Path, when: datetime) -> None:
    """The zip entries and the OOXML modification time of a re-saved workbook set to `when`."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ").encode()

    def pin_core(name: str, data: bytes) -> bytes:
        if name == "docProps/core.xml":
            data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)", rb"\g<1>" + stamp + rb"\g<2>", data)
        return data

    freeze_zip_timestamps(path, when, transform=pin_core)


def retype_legacy(path: Path, saved_at: datetime) -> None:
    """Every text of an openpyxl workbook retyped in TCVN3, every cell in the .VnTime font."""
    from openpyxl import load_workbook
    from openpyxl.cell.cell import MergedCell

    book = load_workbook(path)
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell, MergedCell):
                    continue
                if isinstance(cell.value, str):
                    cell.value = tcvn3(cell.value)
                if cell.has_style:
                    font = copy.copy(cell.font)
                    font.name = ".VnTime"
                    cell.font = font
    book.save(path)
    pin_saved_at(path, saved_at)


PLAN_TEXT: tuple[tuple[str, str], ...] = (
    # (style, text): "c" centred, "b" bold centred, "h" bold, "p" body
    ("c", PARENT_LINE), ("c", "***"), ("c", "Số: 45-KH/TĐTN-TCKT"),
    ("c", "Bình Dương, ngày 15 tháng 01 năm 2024"),
    ("b", "KẾ HOẠCH"),
    ("b", "Báo cáo kết quả công tác phát triển đảng trong học sinh, sinh viên, thanh niên công nhân "
          "giai đoạn 2021 - 2023"),
    ("h", "I. MỤC ĐÍCH, YÊU CẦU"),
    ("p", "1. Đánh giá thực chất kết quả công tác bồi dưỡng, giới thiệu đoàn viên ưu tú cho Đảng xem xét "
          "kết nạp trong học sinh, sinh viên, thanh niên công nhân giai đoạn 2021 - 2023."),
    ("p", "2. Số liệu báo cáo chính xác, đúng biểu mẫu, gửi đúng thời gian quy định."),
    ("h", "II. NỘI DUNG, THỜI GIAN"),
    ("p", "Ban Thường vụ các Huyện, Thị, Thành đoàn và Đoàn trực thuộc báo cáo theo biểu mẫu đính kèm, "
          "gửi về Ban Tổ chức - Kiểm tra Tỉnh đoàn trước ngày 15/02/2024 (bản mềm qua thư điện tử, bản "
          "có chữ ký, đóng dấu gửi kèm)."),
    ("h", "III. TỔ CHỨC THỰC HIỆN"),
    ("p", "Giao Ban Tổ chức - Kiểm tra Tỉnh đoàn theo dõi, tổng hợp, báo cáo Ban Thường vụ Tỉnh đoàn."),
)
PLAN_SIGNATURE = ("Nơi nhận:\n- Thường trực Tỉnh ủy (b/c);\n- Các Huyện, Thị, Thành đoàn và Đoàn trực thuộc;\n"
                  "- Lưu VP, TCKT.", "TM. BAN THƯỜNG VỤ TỈNH ĐOÀN\nPHÓ BÍ THƯ\n\n\nLê Thị Thanh Thảo")


def number_text(value: object) -> str:
    """A count as typed in a Word table: thousands with "." ("21.030")."""
    return f"{value:,}".replace(",", ".") if isinstance(value, int) else str(value if value is not None else "")


def write_docx(spec: FormSpec, path: Path) -> Path:
    """The province's plan as a unit sends it back, filled in: the plan's text and signature, then on a
    landscape page of its own the unit's heading, the form table (2-row header of merged cells, as the
    spreadsheet form), the date and the unit's signature table."""
    import docx
    from docx.enum.section import WD_ORIENT, WD_SECTION
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    document = docx.Document()
    normal = document.styles["Normal"]
    normal.font.name = "Times New Roman"
    normal.font.size = Pt(13)

    def paragraph(text: str, style: str = "p") -> None:
        para = document.add_paragraph()
        run = para.add_run(text)
        run.bold = style in ("b", "h")
        if style in ("c", "b"):
            para.alignment = WD_ALIGN_PARAGRAPH.CENTER
        elif style == "p":
            para.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY

    def fill(cell, text: str, bold: bool = False, align=WD_ALIGN_PARAGRAPH.CENTER) -> None:
        lines = text.split("\n")
        cell.text = ""
        for index, line in enumerate(lines):
            para = cell.paragraphs[0] if index == 0 else cell.add_paragraph()
            para.alignment = align
            if line:
                para.add_run(line).bold = bold

    def signature(left: str, right: str) -> None:
        table = document.add_table(rows=1, cols=2)
        fill(table.cell(0, 0), left, align=WD_ALIGN_PARAGRAPH.LEFT)
        fill(table.cell(0, 1), right, bold=True)

    for style, text in PLAN_TEXT:
        paragraph(text, style)
    signature(*PLAN_SIGNATURE)

    section = document.add_section(WD_SECTION.NEW_PAGE)
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = section.page_height, section.page_width
    for style, text in (("c", PARENT_LINE), ("b", spec.unit_line), ("c", "***"), ("b", PARTY_LINE),
                        ("c", spec.place_date), ("b", REPORT_TITLE), ("b", REPORT_SUBJECT),
                        ("b", REPORT_PERIOD), ("c", DEFAULT_TITLE_LINES[0]), ("p", DEFAULT_TITLE_LINES[3])):
        paragraph(text, style)

    rows = spec.data_rows()
    table = document.add_table(rows=2 + len(rows) + (1 if spec.total_row else 0), cols=9)
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    for col, label in enumerate(HEADER_LABELS.values()):  # TT … Số sinh viên: across both header rows
        merged = table.cell(0, col).merge(table.cell(1, col))
        fill(merged, label, bold=True)
    fill(table.cell(0, 7).merge(table.cell(0, 8)), WORKERS_LABEL, bold=True)
    fill(table.cell(1, 7), WORKERS_SUBLABELS[0], bold=True)
    fill(table.cell(1, 8), WORKERS_SUBLABELS[1], bold=True)
    for number, (_, year, vals) in enumerate(rows, start=1):
        cells = table.rows[1 + number].cells
        fill(cells[0], str(number))
        fill(cells[1], str(spec.year_label(year)))
        for col, metric in enumerate(METRICS, start=2):
            fill(cells[col], number_text(vals.get(metric)), align=WD_ALIGN_PARAGRAPH.RIGHT)
    if spec.total_row:
        last = 2 + len(rows)
        fill(table.cell(last, 0).merge(table.cell(last, 1)), spec.total_row, bold=True)
        for col, metric in enumerate(METRICS, start=2):
            fill(table.cell(last, col), number_text(spec.expected_total(metric)), bold=True,
                 align=WD_ALIGN_PARAGRAPH.RIGHT)
    signature("Nơi nhận:\n- Ban Thường vụ Tỉnh đoàn;\n- Lưu VP.",
              f"TM. BAN THƯỜNG VỤ\nBÍ THƯ\n\n\n{spec.signer}")
    document.add_paragraph("")  # Word ends every document with a paragraph

    properties = document.core_properties
    properties.author = properties.last_modified_by = spec.author
    properties.title = "Kế hoạch 45-KH/TĐTN-TCKT"
    properties.created = properties.modified = spec.saved_at
    properties.revision = 4
    document.save(path)
    freeze_zip_timestamps(path, spec.saved_at)
    return path


class _ArchiveUtilityInfo(zipfile.ZipInfo):
    """macOS Archive Utility stores names in UTF-8, decomposed (NFD), without setting the UTF-8 flag."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # noqa: N802 (zipfile's name)
        return self.filename.encode("utf-8"), self.flag_bits & ~0x800


def apple_double() -> bytes:
    """The '._name' AppleDouble file Archive Utility adds beside a file: its Finder info with the extended
    attributes (here the quarantine flag of a mail attachment), and an empty resource fork; 4096 bytes."""
    quarantine, name = b"0083;65c5f3b4;Mail;", b"com.apple.quarantine\x00"
    fork_at, fork_length = 3810, 286
    data_at = 50 + 34 + 36 + 32  # header, Finder info and padding, ATTR header, one attribute entry
    entry = (data_at.to_bytes(4, "big") + len(quarantine).to_bytes(4, "big") + bytes(2)
             + len(name).to_bytes(1, "big") + name).ljust(32, b"\x00")
    attributes = (b"ATTR" + bytes(4) + fork_at.to_bytes(4, "big") + data_at.to_bytes(4, "big")
                  + len(quarantine).to_bytes(4, "big") + bytes(12) + bytes(2) + (1).to_bytes(2, "big"))
    header = (bytes.fromhex("0005160700020000") + b"Mac OS X        " + (2).to_bytes(2, "big")
              + (9).to_bytes(4, "big") + (50).to_bytes(4, "big") + (fork_at - 50).to_bytes(4, "big")
              + (2).to_bytes(4, "big") + fork_at.to_bytes(4, "big") + fork_length.to_bytes(4, "big"))
    body = (header + bytes(34) + attributes + entry + quarantine).ljust(fork_at, b"\x00")
    fork_header = bytes.fromhex("0000010000000100000000000000001e")  # an empty resource fork: header, map
    fork = fork_header + bytes(240) + fork_header + bytes(8) + bytes.fromhex("001e001effff")
    assert len(body) + len(fork) == fork_at + fork_length == 4096
    return body + fork


def zip_bytes(sample: Sample, members: list[Built]) -> bytes:
    """An archive laid out as macOS Archive Utility writes it: each file, then the '__MACOSX/' folder with
    its AppleDouble companion; names in NFD without the UTF-8 flag, every entry dated when it was made."""
    stamp = sample.mtime.replace(tzinfo=None).timetuple()[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        def add(name: str, data: bytes, folder: bool = False) -> None:
            info = _ArchiveUtilityInfo(unicodedata.normalize("NFD", name), date_time=stamp)
            info.create_system = 3
            info.external_attr = ((0o40755 << 16) | 0x10) if folder else (0o100644 << 16)
            info.compress_type = zipfile.ZIP_STORED if folder else zipfile.ZIP_DEFLATED
            archive.writestr(info, data)

        for member in members:
            add(member.name, member.data)
        add("__MACOSX/", b"", folder=True)
        for member in members:
            add(f"__MACOSX/._{member.name}", apple_double())
    return buffer.getvalue()


MIME_TYPES = {".xlsx": ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
              ".pdf": ("application", "pdf")}


def mail_bytes(sample: Sample, members: list[Built]) -> bytes:
    """A forwarded mail as Thunderbird saves it (.eml, CRLF line ends): the unit's address forwards what an
    officer sent, with the attachments; boundaries fixed so the file is the same on every run."""
    assert sample.received is not None
    unit = UNITS_BY_CODE["QS"]
    message = EmailMessage()
    message["X-Mozilla-Status"] = "0001"
    message["X-Mozilla-Status2"] = "00000000"
    message["Return-Path"] = f"<{sample.sender}>"
    message["Received"] = ("from mail.example.vn (mail.example.vn [203.113.10.25]) by mx.tinhdoan.example.vn "
                           f"with ESMTPS id 4TWq7n2Hz1z9; {format_datetime(sample.received)}")
    message["Message-ID"] = "<CAL8rW2Xq4m9dZ7u@mail.example.vn>"
    message["Date"] = format_datetime(sample.received)
    message["MIME-Version"] = "1.0"
    message["From"] = f"{unit.name} <{sample.sender}>"
    message["To"] = "Ban Tổ chức - Kiểm tra Tỉnh đoàn <bantochuc@example.vn>"
    message["Subject"] = "Fwd: Báo cáo kết quả PTĐ giai đoạn 2021 - 2023"
    message.set_content(
        "Kính gửi Ban Tổ chức - Kiểm tra Tỉnh đoàn,\n\n"
        "Đoàn Thanh niên Bộ Chỉ huy Quân sự tỉnh chuyển báo cáo kết quả công tác phát triển đảng giai đoạn "
        "2021 - 2023 (biểu mẫu và bản ký) do đồng chí Phạm Văn Hùng gửi.\n\n"
        "Trân trọng.\n\n"
        "---------- Forwarded message ---------\n"
        "From: Phạm Văn Hùng <hung.pv.bchqs@gmail.com>\n"
        "Date: Fri, 9 Feb 2024 at 15:58\n"
        "Subject: Báo cáo PTĐ\n"
        f"To: <{sample.sender}>\n\n"
        "Gửi đồng chí báo cáo PTĐ, em gửi kèm bản đã ký để đồng chí chuyển Tỉnh đoàn ạ.\n")
    for member in members:
        maintype, subtype = MIME_TYPES[Path(member.name).suffix.lower()]
        message.add_attachment(member.data, maintype=maintype, subtype=subtype, filename=member.name)
    for index, part in enumerate(message.walk()):
        if part.is_multipart():
            part.set_boundary(f"------------tonghop{index:02d}Zq0Lk3Vb9rWm")
    return message.as_bytes(policy=SMTP)


# ---------------------------------------------------------------------------
# producing the files


@dataclass
class Built:
    data: bytes
    producer: str
    name: str
    source_sha256: str | None = None
    members: list[Built] = field(default_factory=list)


def produce(sample: Sample, work: Path, say: Callable[[str], None],
            previous: dict[str, Built]) -> Built:
    """Build one sample with the producer it names (or the nearest one available).

    LibreOffice and Gnumeric order some internal records (fonts, page styles)
    differently on every run although the content is the same, so a converted
    file whose source is byte-identical to last time's is kept as it is.
    """
    if sample.payload is not None:
        return Built(sample.payload, "bytes", sample.name)
    if sample.members:
        # Members are written by deterministic producers only: a container is rebuilt on every run.
        members = [produce(member, work, say, {}) for member in sample.members]
        assert all(m.producer in ("openpyxl", "xlsxwriter", "bytes") for m in members), sample.name
        if sample.producer == "zip":
            return Built(zip_bytes(sample, members), "zipfile", sample.name, members=members)
        return Built(mail_bytes(sample, members), "email", sample.name, members=members)
    assert sample.spec is not None
    spec = sample.spec
    name = sample.name
    # ASCII work names: the programs then never see the Vietnamese file names.
    stem = "s" + hashlib.sha1(name.encode()).hexdigest()[:10]
    source = work / f"{stem}.xlsx"
    write = builders.write_xlsxwriter if sample.source == "xlsxwriter" else builders.write_openpyxl
    kind, _, fmt = sample.producer.partition(":")
    target_ext = Path(name).suffix.lower().lstrip(".")
    producer = sample.producer

    if kind == "python-docx":
        return Built(write_docx(spec, work / f"{stem}.docx").read_bytes(), kind, name)
    write(spec, source)
    if sample.legacy:
        assert sample.legacy == "tcvn3" and write is builders.write_openpyxl, name
        retype_legacy(source, spec.saved_at)
    if kind in ("openpyxl", "xlsxwriter"):
        return Built(source.read_bytes(), kind, name)

    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    earlier = previous.get(name)
    if earlier is not None and earlier.source_sha256 == digest:
        return Built(earlier.data, earlier.producer, name, digest)
    result: Path | None = None
    if kind == "soffice" and builders.HAVE_SOFFICE:
        result = builders.convert_with_soffice(source, fmt, work / f"{stem}_lo")
        producer = f"LibreOffice {fmt}"
    elif kind == "ssconvert" and builders.HAVE_SSCONVERT:
        result = builders.convert_with_ssconvert(source, work / f"{stem}_gn.{target_ext}")
        producer = f"Gnumeric {target_ext}"
    elif builders.HAVE_SOFFICE and target_ext in builders.SOFFICE_FILTERS:
        say(f"  ! thiếu ssconvert: dùng LibreOffice để tạo {name}")
        result = builders.convert_with_soffice(source, target_ext, work / f"{stem}_lo")
        producer = f"LibreOffice {target_ext} (thay cho Gnumeric)"
    elif builders.HAVE_SSCONVERT and f".{target_ext}" in builders.SSCONVERT_EXPORTERS:
        say(f"  ! thiếu soffice: dùng Gnumeric để tạo {name}")
        result = builders.convert_with_ssconvert(source, work / f"{stem}_gn.{target_ext}")
        producer = f"Gnumeric {target_ext} (thay cho LibreOffice)"
    if result is None:
        fallback = f"{Path(name).stem}.xlsx"
        say(f"  ! thiếu chương trình cho {name}: ghi bằng {sample.source} thành {fallback}")
        return Built(source.read_bytes(), f"{sample.source} (thay cho {sample.producer})", fallback)
    # The programs stamp "now" on every zip entry; the save time is what a real file carries.
    freeze_zip_timestamps(result, sample.mtime.replace(tzinfo=None))
    return Built(result.read_bytes(), producer, name, digest)


def disk_name(name: str, nfd: bool) -> str:
    return unicodedata.normalize("NFD" if nfd else "NFC", name)


def load_previous(inbox: Path, expected: Path) -> dict[str, Built]:
    """Converted files of the last run with the hash of the source they came from."""
    if not expected.exists() or not inbox.is_dir():
        return {}
    document = json.loads(expected.read_text(encoding="utf-8"))
    on_disk = {unicodedata.normalize("NFC", p.name): p for p in inbox.iterdir() if p.is_file()}
    out: dict[str, Built] = {}
    for name, digest in document.get("build", {}).get("source_sha256", {}).items():
        entry = document.get("files", {}).get(name)
        if entry is not None and name in on_disk:
            out[name] = Built(on_disk[name].read_bytes(), entry["producer"], name, digest)
    return out


def remove_previous(inbox: Path, names: set[str], expected: Path) -> None:
    """Delete earlier sample files only, whatever normalisation their names have on disk."""
    if expected.exists():
        names = names | set(json.loads(expected.read_text(encoding="utf-8")).get("files", {}))
    wanted = {unicodedata.normalize("NFC", n) for n in names}
    for entry in inbox.iterdir():
        if entry.is_file() and unicodedata.normalize("NFC", entry.name) in wanted:
            entry.unlink()


def set_mtime(path: Path, when: datetime) -> None:
    stamp = when.timestamp()
    os.utime(path, (stamp, stamp))


def value_findings(spec: FormSpec, unit: str | None) -> set[tuple[str, str | None]]:
    """Value-level findings a careful reader would make, to compare with what a sample declares."""
    found: set[tuple[str, str | None]] = set()
    registry = quotas().get(unit or "", {})
    previous_members: int | None = None
    seen: set[int] = set()
    for row, year, vals in spec.data_rows():
        if year in seen:
            found.add(("repeated_year", f"B{row}"))
            continue
        seen.add(year)
        numbers: dict[str, int] = {}
        for metric, column in METRIC_COLUMNS.items():
            cell, value = f"{column}{row}", vals.get(metric)
            if isinstance(value, Formula):
                value = value.cached
            if value is None or (isinstance(value, str) and value.strip() in ("", "-", "–")):
                found.add(("blank", cell))
                numbers[metric] = 0
                continue
            if isinstance(value, str):
                digits = value.strip().replace(".", "").replace(",", "").replace(" ", "")
                if not digits.lstrip("-").isdigit():
                    found.add(("text", cell))
                    continue
                value = int(digits)
            if isinstance(value, float) and not value.is_integer():
                found.add(("fraction", cell))
                continue
            if value < 0:
                found.add(("negative", cell))
            numbers[metric] = int(value)
        members, outstanding = numbers.get("members_total"), numbers.get("outstanding_members")
        if members is not None and outstanding is not None and outstanding > members:
            found.add(("outstanding", f"D{row}"))
        if outstanding is not None and sum(numbers.get(m, 0) for m in ADMITTED_METRICS) > outstanding:
            found.add(("admitted", f"D{row}"))
        if registry and numbers.get("quota_assigned") not in (None, registry.get(year)):
            found.add(("quota", f"E{row}"))
        if members is not None and previous_members and abs(members - previous_members) > previous_members / 2:
            found.add(("jump", f"C{row}"))
        previous_members = members if members is not None else previous_members
    for year in range(2021, 2024):
        if year not in seen:
            found.add(("missing_year", None))
    if spec.total_row and spec.total_values is not None:
        for metric, column in METRIC_COLUMNS.items():
            given = spec.total_values.get(metric)
            rows = [vals.get(metric) for _, _, vals in spec.data_rows()]
            expected = sum(v for v in rows if isinstance(v, (int, float)))
            if isinstance(given, (int, float)) and given != expected:
                found.add(("total", f"{column}{spec.total_row_number}"))
    return found


# Issues about the unit or the file, not about a value: value_findings cannot see them.
FILE_KINDS = frozenset({"unit_from_name", "unknown_unit", "from_sender", "name_conflict", "legacy_font",
                        "signed_copy", "not_a_report"})


def check_samples(samples: list[Sample]) -> None:
    """Guard the answer key: every form shows exactly the value-level issues it declares."""
    names = [s.name for s in samples]
    assert len(names) == len(set(names)), "duplicate sample names"
    assert all(unicodedata.is_normalized("NFC", n) for n in names)
    for s in samples:
        if s.sheets or s.members:
            assert (s.unit, s.status, s.issues) == (None, "", []), f"{s.name}: its outcome is per sheet or member"
    rows = [row for s in samples for row in rows_of(s)]
    assert len({(r.name, r.sheet) for r in rows}) == len(rows), "duplicate submission rows"
    for r in rows:
        has_error = any(i["severity"] == "error" for i in r.issues)
        if r.status not in ("superseded", "ignored"):
            assert (r.status == "rejected") == has_error, r.name
        if r.spec is None:
            continue
        declared = {(i["kind"], i["cell"]) for i in r.issues if i["kind"] not in FILE_KINDS}
        found = value_findings(r.spec, r.unit)
        assert declared == found, f"{r.name}: declared {sorted(declared, key=str)} but found {sorted(found, key=str)}"
    by_unit: dict[str, list[Row]] = {}
    for r in rows:
        if r.unit and r.status != "ignored":
            by_unit.setdefault(r.unit, []).append(r)
    for unit, group in by_unit.items():
        group.sort(key=lambda r: r.when)
        # After a checkout every file has the same time: ties go by name, and must give the same result.
        assert [r.name for r in group] == sorted(r.name for r in group), f"{unit}: name order != mtime order"
        assert all(r.status == "superseded" for r in group[:-1]), unit
        assert group[-1].status in ("accepted", "rejected"), unit
    reporting = set(by_unit)
    assert reporting.isdisjoint(MISSING_UNITS)
    assert reporting | set(MISSING_UNITS) == set(UNITS_BY_CODE)


def outcome(unit: str | None, status: str, issues: list[dict[str, object]]) -> dict[str, object]:
    return {"unit": unit, "status": status, "issues": issues}


def member_entries(sample: Sample, built: Built) -> dict[str, dict]:
    entries = {}
    for member, made in zip(sample.members, built.members, strict=True):
        entry = outcome(member.unit, member.status, member.issues) | {"producer": made.producer}
        if sample.received is not None:
            entry["received"] = sample.received.isoformat()
        entries[made.name] = entry | {"exercises": member.exercises}
    return entries


def expected_document(samples: list[Sample], built: dict[str, Built]) -> dict:
    files = {}
    for s in sorted(samples, key=lambda s: built[s.name].name):
        made = built[s.name]
        if s.members:
            entry: dict[str, object] = {"members": member_entries(s, made)}
        elif s.sheets:
            entry = {"sheets": {o.sheet: outcome(o.unit, o.status, o.issues) | {"exercises": o.exercises}
                                for o in s.sheets}}
        else:
            entry = outcome(s.unit, s.status, s.issues)
        files[made.name] = entry | {
            "producer": made.producer,
            "mtime": s.mtime.isoformat(),
            "name_on_disk_nfd": s.nfd_on_disk,
            "exercises": s.exercises,
        }
    return {
        "about": "Answer key for inbox/: per file (NFC name) the unit code, the outcome and the issues "
                 "with their cells. A file whose forms are told apart by sheet (several forms in one "
                 "workbook, a Word table) has them under 'sheets'; an archive or a saved mail has its "
                 "members under 'members', each a row 'file/member' of its own ('received': the mail's "
                 "Date, the time the run gives it). A unit's older files are 'superseded' even when its "
                 "newest file is rejected. Restore mtimes after a checkout with "
                 "'python scripts/make_sample_inbox.py --touch-only'.",
        "registry": "templates/don_vi.xlsx",
        "files": files,
        "missing_units": sorted(MISSING_UNITS),
        # Lets a re-run keep converted files whose source did not change.
        "build": {"source_sha256": {b.name: b.source_sha256 for b in sorted(built.values(), key=lambda b: b.name)
                                    if b.source_sha256}},
    }


def touch_only(inbox: Path, expected: Path) -> int:
    from pipeline.handout.demo import restore_received_times

    restored = restore_received_times(inbox, expected)
    for name in restored.missing:
        print(f"  ! không thấy tệp {name}")
    print(f"Đã đặt lại thời gian sửa đổi cho {restored.files} tệp trong {inbox}.")
    return 1 if restored.missing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Tạo lại hộp thư mẫu inbox/ và tệp đáp án.")
    parser.add_argument("--inbox", type=Path, default=INBOX, help="thư mục đích (mặc định: inbox/)")
    parser.add_argument("--expected", type=Path, default=EXPECTED,
                        help="tệp đáp án (mặc định: tests/sample_inbox_expected.json)")
    parser.add_argument("--force", action="store_true",
                        help="chuyển đổi lại mọi tệp kể cả khi nguồn không đổi")
    parser.add_argument("--touch-only", action="store_true",
                        help="chỉ đặt lại thời gian sửa đổi của các tệp đã có (sau khi git clone)")
    args = parser.parse_args(argv)
    inbox: Path = args.inbox
    expected: Path = args.expected

    if args.touch_only:
        return touch_only(inbox, expected)

    samples = all_samples()
    check_samples(samples)
    print(f"LibreOffice: {builders.SOFFICE or 'không có'}; Gnumeric: {builders.SSCONVERT or 'không có'}")
    inbox.mkdir(parents=True, exist_ok=True)
    previous = {} if args.force else load_previous(inbox, expected)
    remove_previous(inbox, {s.name for s in samples}, expected)
    built: dict[str, Built] = {}
    with tempfile.TemporaryDirectory(prefix="tonghop_inbox_") as tmp:
        for sample in samples:
            result = produce(sample, Path(tmp), print, previous)
            path = inbox / disk_name(result.name, sample.nfd_on_disk)
            path.write_bytes(result.data)
            set_mtime(path, sample.mtime)
            built[sample.name] = result
            outcomes = ([f"{o.sheet}: {o.status}" for o in sample.sheets]
                        or [f"{m.name}: {m.status}" for m in sample.members] or [sample.status])
            print(f"  {result.name:<48} {result.producer:<22} {'; '.join(outcomes)}")
    document = expected_document(samples, built)
    expected.parent.mkdir(parents=True, exist_ok=True)
    expected.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"Đã ghi {len(samples)} tệp vào {inbox} và đáp án {expected}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

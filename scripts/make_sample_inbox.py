"""(Re)write the bundled sample inbox ``inbox/`` and its answer key.

Each sample is a real file written by a real producer: openpyxl and
XlsxWriter directly, LibreOffice (soffice) and Gnumeric (ssconvert) by
opening such a file and saving it in their own format. Together the files
cover the clean cases, the warnings, the errors and the junk that a
reporting round really brings in; ``tests/sample_inbox_expected.json``
records, for every file, the unit, the outcome and the issues with cells.

Git keeps no modification times, so after a fresh checkout run this script
with ``--touch-only`` to restore them (the pipeline uses them to decide
which of a unit's files is newest).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))

import builders  # noqa: E402
from builders import (  # noqa: E402
    ADMITTED_METRICS,
    BLANK_UNIT_LINE,
    METRIC_COLUMNS,
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
MISSING_UNITS: tuple[str, ...] = ("TA", "PG", "QS")

Values = dict[int, dict[str, object]]


@dataclass
class Sample:
    name: str
    unit: str | None
    status: str
    exercises: str
    mtime: datetime
    # "openpyxl" | "xlsxwriter" | "soffice:<fmt>" | "ssconvert" | "bytes"
    producer: str
    spec: FormSpec | None = None
    # Writer of the file that soffice/ssconvert open.
    source: str = "openpyxl"
    payload: bytes | None = None
    issues: list[dict[str, object]] = field(default_factory=list)
    nfd_on_disk: bool = False


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
    spec = form("BCH ĐOÀN KHỐI CÁC CƠ QUAN TỈNH", when, "Bình Dương", "Võ Thị Ngọc Hân",
                figures("KCQ"), instruction_sheet=True, hidden_sheet=True,
                inserted_rows=[["A", "B", 1, 2, 3, 4, 5, 6, 7]])
    return Sample("KhoiCQ_baocao_PTD.ods", "KCQ", "accepted",
                  "LibreOffice .ods; 'Hướng dẫn' sheet first, then a hidden sheet 'Bản cũ' holding an "
                  "older copy of the form with other numbers, then the form (2nd visible sheet); a "
                  "column-number row 'A B 1 2 3 4 5 6 7' between header and data",
                  when, "soffice:ods", spec)


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
    spec = form("BCH ĐOÀN KHỐI DOANH NGHIỆP TỈNH", when, "Bình Dương", "Bùi Thị Kim Ngân", values,
                title_rows=4)
    assert spec.header_row == 12
    return Sample("Báo cáo PTĐ - Đoàn Khối Doanh nghiệp.xlsx", "KDN", "accepted",
                  "XlsxWriter; four extra title lines so the header starts at row 12 (data rows 14-16); "
                  "members jump +62 % from 2022 to 2023; 2022 quota reported "
                  f"{registry_quota + 8} where the registry says {registry_quota}; "
                  "file name stored in NFD on disk (as macOS writes it)",
                  when, "xlsxwriter", spec, source="xlsxwriter", nfd_on_disk=True,
                  issues=[issue("quota", spec.cell_of(2022, "quota_assigned")),
                          issue("jump", spec.cell_of(2023, "members_total"))])


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


def sample_cdvns() -> Sample:
    when = at(11, 16, 0)
    values = figures("CDVNS")
    values[2023]["admitted_students"] = 12.5
    spec = form("BCH ĐOÀN TRƯỜNG CĐ VIỆT NAM - SINGAPORE", when, "Bình Dương", "Phan Thanh Tâm", values)
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


def pdf_bytes() -> bytes:
    text = b"BT /F1 14 Tf 72 770 Td (KE HOACH 45-KH/TDTN-TCKT - Bao cao ket qua phat trien dang 2021-2023) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def junk_samples() -> list[Sample]:
    def junk(name: str, when: datetime, payload: bytes, why: str) -> Sample:
        return Sample(name, None, "ignored", why, when, "bytes", payload=payload)

    return [
        junk("~$Báo cáo Dĩ An.xlsx", at(9, 11, 15), lock_file_bytes(),
             "Office lock file left while 'Báo cáo Dĩ An.xlsx' was open"),
        junk("Thumbs.db", at(1, 8, 0), thumbs_db_bytes(), "Windows thumbnail cache (OLE signature)"),
        junk("desktop.ini", at(1, 8, 0), desktop_ini_bytes(), "Windows folder settings"),
        junk(".DS_Store", at(10, 8, 21), ds_store_bytes(), "hidden macOS folder metadata"),
        junk("KH 45-KH-TĐTN về báo cáo PTĐ.pdf", at(1, 14, 30), pdf_bytes(),
             "the province's plan as a PDF, not a report"),
    ]


def all_samples() -> list[Sample]:
    return [
        sample_dt(), sample_tdm(), sample_bc(), sample_kcq(), *samples_tu(), sample_da(),
        sample_bb(), sample_btu(), sample_kdn(), sample_ca(), *samples_dhtdm(), sample_dhbd(),
        sample_dhqtmd(), sample_cdvns(), sample_cdyt(), sample_unknown(), *junk_samples(),
    ]


# ---------------------------------------------------------------------------
# producing the files


@dataclass
class Built:
    data: bytes
    producer: str
    name: str
    source_sha256: str | None = None


def produce(sample: Sample, work: Path, say: Callable[[str], None],
            previous: dict[str, Built]) -> Built:
    """Build one sample with the producer it names (or the nearest one available).

    LibreOffice and Gnumeric order some internal records (fonts, page styles)
    differently on every run although the content is the same, so a converted
    file whose source is byte-identical to last time's is kept as it is.
    """
    if sample.payload is not None:
        return Built(sample.payload, "bytes", sample.name)
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

    write(spec, source)
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


def check_samples(samples: list[Sample]) -> None:
    """Guard the answer key: every file shows exactly the value-level issues it declares."""
    names = [s.name for s in samples]
    assert len(names) == len(set(names)), "duplicate sample names"
    assert all(unicodedata.is_normalized("NFC", n) for n in names)
    for s in samples:
        if s.spec is None:
            continue
        declared = {(i["kind"], i["cell"]) for i in s.issues
                    if i["kind"] not in ("unit_from_name", "unknown_unit")}
        found = value_findings(s.spec, s.unit)
        assert declared == found, f"{s.name}: declared {sorted(declared, key=str)} but found {sorted(found, key=str)}"
        has_error = any(i["severity"] == "error" for i in s.issues)
        if s.status != "superseded":
            assert (s.status == "rejected") == has_error, s.name
    by_unit: dict[str, list[Sample]] = {}
    for s in samples:
        if s.unit:
            by_unit.setdefault(s.unit, []).append(s)
    for unit, group in by_unit.items():
        group.sort(key=lambda s: s.mtime)
        assert [s.name for s in group] == sorted(s.name for s in group), f"{unit}: name order != mtime order"
        assert all(s.status == "superseded" for s in group[:-1]), unit
    reporting = set(by_unit)
    assert reporting.isdisjoint(MISSING_UNITS)
    assert reporting | set(MISSING_UNITS) == set(UNITS_BY_CODE)


def expected_document(samples: list[Sample], built: dict[str, Built]) -> dict:
    files = {}
    for s in sorted(samples, key=lambda s: built[s.name].name):
        files[built[s.name].name] = {
            "unit": s.unit,
            "status": s.status,
            "issues": s.issues,
            "producer": built[s.name].producer,
            "mtime": s.mtime.isoformat(),
            "name_on_disk_nfd": s.nfd_on_disk,
            "exercises": s.exercises,
        }
    return {
        "about": "Answer key for inbox/: per file (NFC name) the unit code, the outcome and the issues "
                 "with their cells. A unit's older files are 'superseded' even when its newest file is "
                 "rejected. Restore mtimes after a checkout with "
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
            print(f"  {result.name:<48} {result.producer:<22} {sample.status}")
    document = expected_document(samples, built)
    expected.parent.mkdir(parents=True, exist_ok=True)
    expected.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"Đã ghi {len(samples)} tệp vào {inbox} và đáp án {expected}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

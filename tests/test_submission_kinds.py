"""Everything units send is read or flagged: archives, saved mail, several forms in one workbook, counts
with unit words, the blank form's unit line, transposed forms, scans beside a report, and units whose only
file could not be read. Each case is a real file run through the real CLI, with exact results."""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import replace
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from pathlib import Path

import openpyxl
import pytest
from builders import BLANK_UNIT_LINE, FormSpec, default_values, write_openpyxl
from conftest import run_inbox, set_mtime

from pipeline.read.containers import zip_member_name

RECEIVED = datetime(2024, 2, 6, 9, 30).timestamp()
VN = timezone(timedelta(hours=7))


def spec(unit_line: str, seed: str, **kwargs) -> FormSpec:
    return FormSpec(unit_line=unit_line, values=default_values(seed), **kwargs)


def form_bytes(form: FormSpec, tmp_path: Path, name: str = "form.xlsx") -> bytes:
    path = write_openpyxl(form, tmp_path / f".build-{name}")
    data = path.read_bytes()
    path.unlink()
    return data


def run(inbox: Path, tmp_path: Path) -> tuple[dict[str, list[dict[str, str]]], Path]:
    for path in inbox.rglob("*"):
        if path.is_file():
            set_mtime(path, RECEIVED)
    return run_inbox(inbox, tmp_path)


def rows_by_file(csvs) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for row in csvs["submissions"]:
        found.setdefault(row["file"], []).append(row)
    return found


def value(csvs, unit: str, year: int, metric: str) -> int:
    [row] = [r for r in csvs["values"] if r["unit_code"] == unit and r["year"] == str(year) and r["metric"] == metric]
    return int(row["value"])


def codes(csvs, unit: str) -> set[str]:
    return {r["code"] for r in csvs["issues"] if r["unit_code"] == unit}


# ---------------------------------------------------------------- archives

def test_each_member_of_a_zip_is_a_submission_named_after_the_archive(inbox, tmp_path):
    dau_tieng = spec("BCH HUYỆN ĐOÀN DẦU TIẾNG", "dt")
    phu_giao = spec("BCH HUYỆN ĐOÀN PHÚ GIÁO", "pg")
    with zipfile.ZipFile(inbox / "bao cao.zip", "w") as archive:
        archive.writestr("Báo cáo Dầu Tiếng.xlsx", form_bytes(dau_tieng, tmp_path))
        archive.writestr("thu muc/PhuGiao.xlsx", form_bytes(phu_giao, tmp_path))
        archive.writestr("__MACOSX/._PhuGiao.xlsx", b"\x00\x05\x16\x07")
        archive.writestr("Thumbs.db", b"junk")
    csvs, _ = run(inbox, tmp_path)
    by_file = rows_by_file(csvs)
    assert by_file["bao cao.zip/Báo cáo Dầu Tiếng.xlsx"][0]["unit_code"] == "DT"
    assert by_file["bao cao.zip/Báo cáo Dầu Tiếng.xlsx"][0]["status"] == "accepted"
    assert by_file["bao cao.zip/thu muc/PhuGiao.xlsx"][0]["unit_code"] == "PG"
    assert value(csvs, "DT", 2022, "members_total") == dau_tieng.values[2022]["members_total"]
    assert value(csvs, "PG", 2023, "admitted_students") == phu_giao.values[2023]["admitted_students"]
    assert not any("MACOSX" in name or "Thumbs" in name for name in by_file)


@pytest.mark.parametrize(("raw", "flags", "extra", "expected"), [
    ("Báo cáo.xlsx".encode("utf-8"), 0x800, b"", "Báo cáo.xlsx"),  # flagged UTF-8
    ("Báo cáo.xlsx".encode("utf-8"), 0, b"", "Báo cáo.xlsx"),  # UTF-8 without the flag
    ("Bao cao.xlsx".encode("cp437"), 0, b"", "Bao cao.xlsx"),
    ("Résumé.xlsx".encode("cp437"), 0, b"", "Résumé.xlsx"),  # CP437, as the format says
    (b"x.xlsx", 0, b"\x75\x70" + (5 + len("Dĩ An.xlsx".encode())).to_bytes(2, "little") + b"\x01\x00\x00\x00\x00"
     + "Dĩ An.xlsx".encode(), "Dĩ An.xlsx"),  # the Info-ZIP Unicode Path field wins
])
def test_zip_member_names_decode_as_their_writer_meant(raw, flags, extra, expected):
    info = zipfile.ZipInfo()
    info.filename = raw.decode("utf-8") if flags & 0x800 else raw.decode("cp437")
    info.flag_bits = flags
    info.extra = extra
    assert zip_member_name(info) == expected


def test_a_zip_bomb_inside_a_zip_is_rejected_and_its_neighbours_are_read(inbox, tmp_path):
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as inner:
        inner.writestr("huge.xlsx", b"\x00" * (300 * 1024 * 1024))
    with zipfile.ZipFile(inbox / "nhieu tep.zip", "w") as archive:
        archive.writestr("bomb.zip", bomb.getvalue())
    good = spec("BCH HUYỆN ĐOÀN BÀU BÀNG", "bb")
    (inbox / "Bau Bang.xlsx").write_bytes(form_bytes(good, tmp_path))
    csvs, _ = run(inbox, tmp_path)
    [bomb_row] = [r for r in csvs["submissions"] if r["file"].startswith("nhieu tep.zip")]
    assert bomb_row["status"] == "rejected"
    assert {r["code"] for r in csvs["issues"] if r["file"] == bomb_row["file"]} & {"zip_bomb", "file_too_large"}
    assert value(csvs, "BB", 2021, "members_total") == good.values[2021]["members_total"]


# ---------------------------------------------------------------- saved mail

def mail_with(attachments: list[tuple[str, bytes]], sender: str, when: datetime, subject: str = "Báo cáo PTĐ"):
    message = EmailMessage()
    message["From"] = f"Huyện đoàn <{sender}>"
    message["To"] = "bantochuc@example.vn"
    message["Subject"] = subject
    message["Date"] = format_datetime(when)
    message.set_content("Kính gửi Ban Tổ chức, đơn vị gửi báo cáo đính kèm.")
    for name, data in attachments:
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message


def test_a_saved_mail_gives_each_attachment_its_sender_and_date(inbox, tmp_path):
    blank = spec(BLANK_UNIT_LINE, "dt")  # the unit line left blank: the sender's address names the unit
    when = datetime(2024, 2, 4, 21, 15, tzinfo=VN)
    message = mail_with([("bao cao.xlsx", form_bytes(blank, tmp_path)), ("ban ky.pdf", b"%PDF-1.4\n%%EOF\n")],
                        "huyendoandautieng@example.vn", when)
    (inbox / "Fwd Bao cao.eml").write_bytes(message.as_bytes())
    csvs, folder = run(inbox, tmp_path)
    by_file = rows_by_file(csvs)
    [report] = by_file["Fwd Bao cao.eml/bao cao.xlsx"]
    assert (report["unit_code"], report["status"]) == ("DT", "accepted")
    assert datetime.fromisoformat(report["modified_at"]).timestamp() == when.timestamp()
    assert "unit_from_sender" in codes(csvs, "DT")
    [scan] = by_file["Fwd Bao cao.eml/ban ky.pdf"]
    assert (scan["unit_code"], scan["status"]) == ("DT", "ignored")
    assert value(csvs, "DT", 2023, "outstanding_members") == blank.values[2023]["outstanding_members"]


def test_a_mail_with_500_attachments_is_refused_in_one_line(inbox, tmp_path):
    message = mail_with([(f"tep {i}.txt", b"x") for i in range(500)], "someone@example.vn",
                        datetime(2024, 2, 4, 8, 0, tzinfo=VN))
    (inbox / "spam.eml").write_bytes(message.as_bytes())
    csvs, _ = run(inbox, tmp_path)
    [row] = csvs["submissions"][:1]
    assert (row["file"], row["status"]) == ("spam.eml", "rejected")
    assert [r["code"] for r in csvs["issues"] if r["file"] == "spam.eml"] == ["container_too_many"]


# ---------------------------------------------------------------- one workbook, several forms

def two_sheet_workbook(path: Path, first: FormSpec, second: FormSpec) -> Path:
    return write_openpyxl(replace(first, more_forms=[second]), path)


def test_two_units_forms_in_one_workbook_are_two_submissions(inbox, tmp_path):
    own = spec("BCH ĐOÀN KHỐI DOANH NGHIỆP TỈNH", "kdn", sheet_name="Đoàn Khối")
    member = spec("BCH ĐOÀN THANH NIÊN CÔNG AN TỈNH", "ca", sheet_name="Công an")
    two_sheet_workbook(inbox / "Khoi DN gui kem.xlsx", own, member)
    csvs, _ = run(inbox, tmp_path)
    rows = rows_by_file(csvs)["Khoi DN gui kem.xlsx"]
    assert [(r["unit_code"], r["status"], r["sheet"]) for r in rows] == [
        ("KDN", "accepted", "Đoàn Khối"), ("CA", "accepted", "Công an")]
    assert value(csvs, "KDN", 2021, "members_total") == own.values[2021]["members_total"]
    assert value(csvs, "CA", 2021, "members_total") == member.values[2021]["members_total"]


def test_a_workbook_naming_one_unit_twice_takes_the_last_sheet_with_a_warning(inbox, tmp_path):
    draft = spec("BCH HUYỆN ĐOÀN PHÚ GIÁO", "draft", sheet_name="Bản nháp")
    final = spec("BCH HUYỆN ĐOÀN PHÚ GIÁO", "final", sheet_name="Bản chính")
    two_sheet_workbook(inbox / "PhuGiao.xlsx", draft, final)
    csvs, _ = run(inbox, tmp_path)
    rows = rows_by_file(csvs)["PhuGiao.xlsx"]
    assert [(r["status"], r["sheet"]) for r in rows] == [("superseded", "Bản nháp"), ("accepted", "Bản chính")]
    assert value(csvs, "PG", 2022, "members_total") == final.values[2022]["members_total"]
    assert "unit_twice_in_workbook" in codes(csvs, "PG")


# ---------------------------------------------------------------- cells and unit lines

def test_counts_with_unit_words_are_read_with_a_warning_at_the_cell(inbox, tmp_path):
    values = default_values("ta")
    values[2021]["members_total"] = "14.200 ĐV"
    values[2022]["admitted_pupils"] = "15 người"
    values[2023]["admitted_students"] = "3 em"
    form = FormSpec(unit_line="BCH THÀNH ĐOÀN THUẬN AN", values=values)
    write_openpyxl(form, inbox / "Thuan An.xlsx")
    csvs, _ = run(inbox, tmp_path)
    assert rows_by_file(csvs)["Thuan An.xlsx"][0]["status"] == "accepted"
    assert value(csvs, "TA", 2021, "members_total") == 14200
    assert value(csvs, "TA", 2022, "admitted_pupils") == 15
    assert value(csvs, "TA", 2023, "admitted_students") == 3
    warned = {r["cell"] for r in csvs["issues"] if r["code"] == "value_with_unit_word"}
    assert warned == {form.cell_of(2021, "members_total"), form.cell_of(2022, "admitted_pupils"),
                      form.cell_of(2023, "admitted_students")}


def test_the_blank_forms_unit_line_counts_as_absent_and_the_file_name_names_the_unit(inbox, tmp_path):
    form = spec(BLANK_UNIT_LINE, "bc")
    write_openpyxl(form, inbox / "PTD_BenCat_2024.xlsx")
    csvs, _ = run(inbox, tmp_path)
    [row] = rows_by_file(csvs)["PTD_BenCat_2024.xlsx"]
    assert (row["unit_code"], row["status"]) == ("BC", "accepted")
    [note] = [r for r in csvs["issues"] if r["code"] == "unit_from_file_name"]
    assert "(không có)" in note["message"]


def test_a_transposed_form_is_read_with_the_same_labels(inbox, tmp_path):
    values = default_values("da")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Biểu mẫu"
    sheet["A1"] = "BCH ĐOÀN TỈNH BÌNH DƯƠNG"
    sheet["A2"] = "BCH THÀNH ĐOÀN DĨ AN"
    sheet["A4"] = "KẾT QUẢ CÔNG TÁC PHÁT TRIỂN ĐẢNG giai đoạn 2021 - 2023"
    labels = {"members_total": "Tổng số đoàn viên", "outstanding_members": "Số đoàn viên ưu tú",
              "quota_assigned": "Chỉ tiêu được giao", "admitted_pupils": "Số học sinh được kết nạp Đảng",
              "admitted_students": "Số sinh viên được kết nạp Đảng",
              "admitted_workers_state": "Số TNCCN được kết nạp Đảng khu vực nhà nước",
              "admitted_workers_private": "Số TNCCN được kết nạp Đảng khu vực DN ngoài nhà nước"}
    sheet["A6"] = "Năm"
    for j, year in enumerate((2021, 2022, 2023)):
        sheet.cell(row=6, column=2 + j, value=year)
    for i, (metric, label) in enumerate(labels.items()):
        sheet.cell(row=7 + i, column=1, value=label)
        for j, year in enumerate((2021, 2022, 2023)):
            sheet.cell(row=7 + i, column=2 + j, value=values[year][metric])
    book.save(inbox / "Di An.xlsx")
    csvs, _ = run(inbox, tmp_path)
    [row] = rows_by_file(csvs)["Di An.xlsx"]
    assert (row["unit_code"], row["status"]) == ("DA", "accepted"), csvs["issues"]
    for year in (2021, 2022, 2023):
        for metric in labels:
            assert value(csvs, "DA", year, metric) == values[year][metric]
    [cell] = [r["cell"] for r in csvs["values"] if r["unit_code"] == "DA" and r["year"] == "2022"
              and r["metric"] == "quota_assigned"]
    assert cell == "C9"  # the cell on the sheet, years across


# ---------------------------------------------------------------- nothing vanishes

def test_a_scan_beside_a_report_is_the_units_signed_copy_and_never_displaces_it(inbox, tmp_path):
    form = spec("BCH HUYỆN ĐOÀN DẦU TIẾNG", "dt")
    write_openpyxl(form, inbox / "Dau Tieng.xlsx")
    (inbox / "Dau Tieng - ban ky.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n")
    (inbox / "Dau Tieng - anh chup.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64)
    (inbox / "ke hoach tinh.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    csvs, _ = run(inbox, tmp_path)
    by_file = rows_by_file(csvs)
    assert (by_file["Dau Tieng.xlsx"][0]["unit_code"], by_file["Dau Tieng.xlsx"][0]["status"]) == ("DT", "accepted")
    for scan in ("Dau Tieng - ban ky.pdf", "Dau Tieng - anh chup.jpg"):
        assert (by_file[scan][0]["unit_code"], by_file[scan][0]["status"]) == ("DT", "ignored")
    assert (by_file["ke hoach tinh.pdf"][0]["unit_code"], by_file["ke hoach tinh.pdf"][0]["status"]) == ("", "ignored")
    scan_notes = {r["file"]: r["code"] for r in csvs["issues"] if r["file"].endswith((".pdf", ".jpg"))}
    assert scan_notes == {"Dau Tieng - ban ky.pdf": "signed_copy", "Dau Tieng - anh chup.jpg": "signed_copy",
                          "ke hoach tinh.pdf": "not_a_report"}


def test_a_unit_whose_only_file_is_unreadable_is_shown_as_sent_not_as_missing(inbox, tmp_path):
    (inbox / "Bao cao Phu Giao.xlsx").write_bytes(b"PK\x03\x04" + os.urandom(200))
    (inbox / "Ben Cat - ban ky.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    csvs, folder = run(inbox, tmp_path)
    states = {}
    sheet = openpyxl.load_workbook(folder / "tong_hop.xlsx", read_only=True)["Tình trạng nộp"]
    for row in sheet.iter_rows(min_row=5, values_only=True):
        if row[1]:
            states[row[1]] = row[3]
    assert states["PG"] == "Đã gửi, không đọc được – cần gửi lại"
    assert states["BC"] == "Chỉ gửi bản chụp/bản ký – cần gửi biểu mẫu"
    assert states["DT"].startswith("Chưa nộp")


def test_a_note_beside_the_reports_is_listed_not_rejected(inbox, tmp_path):
    (inbox / "ghi chu.txt").write_text("Gửi kèm báo cáo.", encoding="utf-8")
    (inbox / "bang tinh gia.xlsx").write_text("chỉ là văn bản", encoding="utf-8")
    csvs, _ = run(inbox, tmp_path)
    by_file = rows_by_file(csvs)
    assert by_file["ghi chu.txt"][0]["status"] == "ignored"
    assert by_file["bang tinh gia.xlsx"][0]["status"] == "rejected"  # it claims to be a workbook



def test_the_report_mail_says_a_unit_sent_only_its_scan(inbox, tmp_path):
    import email
    import email.policy

    write_openpyxl(spec("BCH HUYỆN ĐOÀN DẦU TIẾNG", "dt"), inbox / "Dau Tieng.xlsx")
    (inbox / "Ben Cat - ban ky.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    _, folder = run(inbox, tmp_path)
    message = email.message_from_bytes((folder / "thu_bao_cao.eml").read_bytes(), policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    [line] = [line for line in text.splitlines() if line.startswith("- Chưa nộp")]
    assert "Thành đoàn Bến Cát (chỉ gửi bản chụp/bản ký, chưa có biểu mẫu)" in line
    assert "Huyện đoàn Dầu Tiếng" not in line

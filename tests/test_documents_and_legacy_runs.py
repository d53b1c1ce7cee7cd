"""Whole runs over the form filled in Word (.docx, and .odt/.doc through LibreOffice) and over workbooks
typed in legacy TCVN3/VNI fonts: exact units, values, statuses and positions, through the real CLI."""

from __future__ import annotations

import io
import shutil
import subprocess
import unicodedata
from pathlib import Path

import docx
import openpyxl
import pytest
from builders import FormSpec, default_values, write_openpyxl
from conftest import run_inbox as run
from test_legacy_encodings import vni_spelling  # the published VNI scheme, spelled independently of the tables
from test_word_reader import FORM, build_plan


SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
METRICS = ("members_total", "outstanding_members", "quota_assigned", "admitted_pupils", "admitted_students",
           "admitted_workers_state", "admitted_workers_private")


def values_of(csvs, unit: str) -> dict[tuple[int, str], int]:
    return {(int(r["year"]), r["metric"]): int(r["value"]) for r in csvs["values"] if r["unit_code"] == unit}


def word_values() -> dict[tuple[int, str], int]:
    """What the form table of test_word_reader.build_plan holds, as numbers."""
    return {(int(row[1]), metric): int(row[2 + j].replace(".", ""))
            for row in FORM[2:5] for j, metric in enumerate(METRICS)}


def soffice_convert(source: Path, target: str, outdir: Path) -> Path:
    profile = outdir / "profile"
    subprocess.run([SOFFICE, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore",
                    "--convert-to", target, "--outdir", str(outdir), str(source)],
                   check=True, capture_output=True, timeout=180)
    return outdir / f"{source.stem}.{target}"


# ---------------------------------------------------------------- Word

def test_the_form_filled_in_the_word_plan_is_read_with_its_unit_and_values(inbox, tmp_path):
    (inbox / "Ke hoach PTD - Dau Tieng.docx").write_bytes(build_plan())
    csvs, _ = run(inbox, tmp_path)
    [row] = csvs["submissions"][:1]
    assert (row["file"], row["unit_code"], row["status"], row["sheet"]) == (
        "Ke hoach PTD - Dau Tieng.docx", "DT", "accepted", "Bảng 2")
    assert values_of(csvs, "DT") == word_values()
    [cell] = [r["cell"] for r in csvs["values"] if r["unit_code"] == "DT" and r["year"] == "2022"
              and r["metric"] == "members_total"]
    assert cell == "C4"  # the A1 address inside the table: third column, fourth row


def test_an_error_in_a_word_table_points_at_the_table_and_cell_and_gets_a_feedback_copy(inbox, tmp_path):
    document = docx.Document(io.BytesIO(build_plan()))
    form = document.tables[1]
    form.cell(3, 3).paragraphs[0].runs[0].text = "chưa rõ"  # 2022, outstanding members
    document.save(inbox / "Dau Tieng.docx")
    csvs, folder = run(inbox, tmp_path)
    assert csvs["submissions"][0]["status"] == "rejected"
    [issue] = [r for r in csvs["issues"] if r["code"] == "value_not_number"]
    assert (issue["unit_code"], issue["sheet"], issue["cell"]) == ("DT", "Bảng 2", "D4")
    copy = openpyxl.load_workbook(folder / "phan_hoi" / "DT.xlsx")
    shown = [[c for c in row] for row in copy.worksheets[0].iter_rows(values_only=True)]
    assert any("chưa rõ" in str(c) for row in shown for c in row if c)  # the table as the unit sent it


@pytest.mark.skipif(SOFFICE is None, reason="needs LibreOffice to write .odt and .doc")
@pytest.mark.parametrize("target", ["odt", "doc"])
def test_the_form_in_an_odt_or_legacy_doc_reads_the_same(inbox, tmp_path, target):
    source = tmp_path / "Dau Tieng.docx"
    source.write_bytes(build_plan())
    converted = soffice_convert(source, target, tmp_path)
    shutil.copy(converted, inbox / converted.name)
    csvs, _ = run(inbox, tmp_path)
    [row] = csvs["submissions"][:1]
    assert (row["unit_code"], row["status"]) == ("DT", "accepted"), csvs["issues"]
    assert values_of(csvs, "DT") == word_values()


@pytest.mark.skipif(SOFFICE is None, reason="needs LibreOffice to write the .doc")
def test_without_libreoffice_a_legacy_doc_asks_for_docx(inbox, tmp_path, monkeypatch):
    import pipeline.read.spreadsheet as spreadsheet

    source = tmp_path / "Dau Tieng.docx"
    source.write_bytes(build_plan())
    shutil.copy(soffice_convert(source, "doc", tmp_path), inbox / "Dau Tieng.doc")
    monkeypatch.setattr(spreadsheet, "libreoffice_available", lambda: False)  # an office PC without it
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs"))  # and for readers that start afresh (spawned)
    csvs, _ = run(inbox, tmp_path)
    [row] = csvs["submissions"][:1]
    assert (row["unit_code"], row["status"]) == ("DT", "rejected")  # named by its file, sent back with a reason
    assert [r["code"] for r in csvs["issues"] if r["severity"] == "error"] == ["document_needs_converter"]


# ---------------------------------------------------------------- legacy fonts

def tcvn3(text: str) -> str:
    """`text` as a cell typed with a TCVN3 (.VnTime) font holds it, made by glibc's converter. The ABC
    layout has no capitals with a tone mark (a typist switches to .VnTimeH for those): they are typed as
    the small letter, as in real files."""
    typed = "".join(ch.lower() if ch.isupper() and not ch.isascii() and ch not in "ĂÂÊÔƠƯĐ" else ch
                    for ch in unicodedata.normalize("NFC", text))
    done = subprocess.run(["iconv", "-f", "utf-8", "-t", "TCVN5712-1"], input=typed.encode("utf-8"),
                          capture_output=True, check=True)
    return done.stdout.decode("latin-1")


def legacy_workbook(path: Path, convert, font: str, unit_line: str, seed: str) -> dict[tuple[int, str], int]:
    form = FormSpec(unit_line=unit_line, values=default_values(seed))
    write_openpyxl(form, path)
    book = openpyxl.load_workbook(path)
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str):
                    cell.value = convert(cell.value)
                    cell.font = openpyxl.styles.Font(name=font)
    book.save(path)
    return {(year, metric): value for year, row in form.values.items() for metric, value in row.items()}


@pytest.mark.skipif(shutil.which("iconv") is None, reason="needs glibc iconv")
def test_a_workbook_typed_in_tcvn3_is_read_converted_with_a_note(inbox, tmp_path):
    if subprocess.run(["iconv", "-l"], capture_output=True, text=True).stdout.find("TCVN5712-1") < 0:
        pytest.skip("iconv has no TCVN5712-1")
    expected = legacy_workbook(inbox / "ThuanAn.xlsx", tcvn3, ".VnTime", "BCH THÀNH ĐOÀN THUẬN AN", "ta")
    assert "Thµnh §oµn" in tcvn3("Thành Đoàn")  # what the cells hold
    csvs, _ = run(inbox, tmp_path)
    [row] = csvs["submissions"][:1]
    assert (row["unit_code"], row["status"]) == ("TA", "accepted"), csvs["issues"]
    assert values_of(csvs, "TA") == expected
    assert [r["code"] for r in csvs["issues"] if r["severity"] == "info" and r["unit_code"] == "TA"] == ["legacy_font"]


def test_a_workbook_typed_in_vni_is_read_converted_with_a_note(inbox, tmp_path):
    expected = legacy_workbook(inbox / "PhuGiao.xlsx", vni_spelling, "VNI-Times", "BCH HUYỆN ĐOÀN PHÚ GIÁO", "pg")
    csvs, _ = run(inbox, tmp_path)
    [row] = csvs["submissions"][:1]
    assert (row["unit_code"], row["status"]) == ("PG", "accepted"), csvs["issues"]
    assert values_of(csvs, "PG") == expected
    assert "legacy_font" in {r["code"] for r in csvs["issues"] if r["unit_code"] == "PG"}

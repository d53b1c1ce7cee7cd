"""Hostile submissions: files made to stall, exhaust, crash or fool a spreadsheet reader.

Every file is generated on the spot (nothing is downloaded) and stays small on disk: the bombs are
0.2–1 MB and inflate to ~200 MB, written through zipfile's streaming writer so the inflated text
never exists in memory either.

`CORPUS` lists each hostile file with the inbox name it travels under and the issue code(s) that
prove the pipeline recognised it. `VALID` lists ordinary submissions for units the hostile files
never name, so a run over the whole lot has a known, checkable outcome.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import shutil
import struct
import subprocess
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import openpyxl
from builders import HEADER_LABELS, METRICS, WORKERS_LABEL, WORKERS_SUBLABELS

from pipeline.read.spreadsheet import column_letters

PROVINCE_LINE = "BCH ĐOÀN TỈNH BÌNH DƯƠNG"
YEARS = (2021, 2022, 2023)
HEADERS = {**HEADER_LABELS, "H": WORKERS_LABEL}
SUBHEADERS = dict(zip("HI", WORKERS_SUBLABELS))
METRIC_COLUMNS = dict(zip(METRICS, "CDEFGHI", strict=True))
FIRST_DATA_ROW = 10
EVIL_FORMULA = '=HYPERLINK("http://evil.example/x","x")'

Values = dict[int, list[int]]


def form_values(members: int, quota: int = 20) -> Values:
    """Consistent figures: outstanding ≤ members, admitted ≤ outstanding, members grow 5 % a year."""
    values: Values = {}
    for i, year in enumerate(YEARS):
        total = round(members * 1.05**i)
        outstanding = total // 16
        values[year] = [total, outstanding, quota + i, 2 + i, 1 + i, 3 + i, 7 + i]
    return values


def row_of(year: int) -> int:
    return FIRST_DATA_ROW + YEARS.index(year)


def cell_of(year: int, metric: str) -> str:
    return f"{METRIC_COLUMNS[metric]}{row_of(year)}"


def fill_form(ws, unit_line: str, values: Values) -> None:
    ws["A1"] = PROVINCE_LINE
    ws["A2"] = unit_line
    if unit_line.startswith("="):
        # openpyxl turns any "=…" string into a formula; a unit typing it gets text.
        ws["A2"].data_type = "s"
    ws["A4"] = "BÁO CÁO"
    for column, text in HEADERS.items():
        ws[f"{column}8"] = text
    ws.merge_cells("H8:I8")
    for column, text in SUBHEADERS.items():
        ws[f"{column}9"] = text
    for i, year in enumerate(YEARS):
        row = row_of(year)
        ws.cell(row, 1, i + 1)
        ws.cell(row, 2, f"Năm {year}")
        for j, number in enumerate(values[year]):
            ws.cell(row, 3 + j, number)


def form_workbook(unit_line: str, values: Values, title: str = "Biểu mẫu") -> openpyxl.Workbook:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = title
    fill_form(sheet, unit_line, values)
    return workbook


def write_form(path: Path, unit_line: str, values: Values, title: str = "Biểu mẫu") -> Path:
    form_workbook(unit_line, values, title).save(path)
    return path


def form_bytes(unit_line: str, values: Values) -> bytes:
    buffer = io.BytesIO()
    form_workbook(unit_line, values).save(buffer)
    return buffer.getvalue()


# ---------------------------------------------------------------- zip surgery

SHEET = "xl/worksheets/sheet1.xml"


def zip_parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_zip(path: Path, parts: dict[str, bytes], streamed: tuple[str, Iterable[bytes]] | None = None) -> Path:
    """Write `parts`; `streamed` replaces one member with chunks written as they come."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            if streamed is not None and name == streamed[0]:
                with archive.open(name, "w", force_zip64=True) as stream:
                    for chunk in streamed[1]:
                        stream.write(chunk)
            else:
                archive.writestr(name, data)
    return path


def base_parts(unit_line: str = "BCH ĐOÀN KHỐI DOANH NGHIỆP TỈNH", members: int = 4000) -> dict[str, bytes]:
    return zip_parts(form_bytes(unit_line, form_values(members)))


def split_sheet_data(sheet_xml: bytes) -> tuple[bytes, bytes]:
    """(text up to and including the last form row, `</sheetData>` and what follows)."""
    head, marker, tail = sheet_xml.partition(b"</sheetData>")
    assert marker, "worksheet has no sheetData"
    return head, marker + tail


def repeat_to(block: bytes, total: int) -> Iterator[bytes]:
    """`block` repeated in ~1 MiB chunks until `total` bytes have been yielded."""
    chunk = block * max(1, (1 << 20) // len(block))
    written = 0
    while written < total:
        yield chunk
        written += len(chunk)


# ---------------------------------------------------------------- zip bombs

def _bomb(path: Path, unit: bytes, total: int, *, whole_rows: bool = False) -> Path:
    """The form, then `unit` repeated to `total` bytes: as cells of row 13, or (`whole_rows`) as rows."""
    parts = base_parts()
    head, tail = split_sheet_data(parts[SHEET])
    if whole_rows:
        body = itertools.chain([head], repeat_to(b'<row r="13">' + unit + b"</row>", total), [tail])
    else:
        body = itertools.chain([head, b'<row r="13">'], repeat_to(unit, total), [b"</row>", tail])
    return write_zip(path, parts, streamed=(SHEET, body))


def bomb_empty_cells(path: Path) -> Path:
    """~190 MiB of `<c/>` in one row (~0.2 MB on disk): under the declared-size cap, so only
    measuring while inflating can catch it."""
    return _bomb(path, b"<c/>", 190 * 1024 * 1024)


def bomb_styled_cells(path: Path) -> Path:
    """~210 MiB of styled empty cells `<c r=".." s="1"/>` (~1 MB on disk): declared size over the cap."""
    cells = b"".join(b'<c r="%s13" s="1"/>' % column_letters(i).encode() for i in range(26))
    return _bomb(path, cells, 210 * 1024 * 1024, whole_rows=True)


def bomb_value_cells(path: Path) -> Path:
    """~195 MiB of number cells (what a 'fill down' over a million rows leaves behind)."""
    return _bomb(path, b'<c t="n"><v>1</v></c>', 195 * 1024 * 1024)


def understated_size(path: Path, *, matching_crc: bool = False) -> Path:
    """A ~150 MB worksheet whose local and central headers claim 1,000 bytes.

    With `matching_crc` the CRC fields are patched to the CRC of those first 1,000 bytes, so a
    reader that trusts the declared size sees a complete, checksummed (and truncated) member.
    """
    parts = base_parts()
    head, tail = split_sheet_data(parts[SHEET])
    filler = b'<row r="20"><c r="A20" s="0"/></row>'
    write_zip(path, parts, streamed=(SHEET, [head, *repeat_to(filler, 150 * 1024 * 1024), tail]))
    declared = 1000
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo(SHEET)
    crc = zlib.crc32(head[:declared]) if matching_crc else info.CRC
    offset = info.header_offset
    assert data[offset:offset + 4] == b"PK\x03\x04"
    name_length, extra_length = struct.unpack_from("<HH", data, offset + 26)
    struct.pack_into("<I", data, offset + 14, crc)
    _patch_sizes(data, offset + 22, offset + 30 + name_length, extra_length, declared, local=True)
    position = 0
    while (position := data.find(b"PK\x01\x02", position)) >= 0:
        name_length, extra_length = struct.unpack_from("<HHH", data, position + 28)[:2]
        name = bytes(data[position + 46:position + 46 + name_length])
        if name == SHEET.encode():
            struct.pack_into("<I", data, position + 16, crc)
            _patch_sizes(data, position + 24, position + 46 + name_length, extra_length, declared, local=False)
        position += 4
    path.write_bytes(bytes(data))
    return path


def _patch_sizes(data: bytearray, size_offset: int, extra_start: int, extra_length: int, declared: int,
                 *, local: bool) -> None:
    """Set the uncompressed size, in the plain field or, when it says 0xFFFFFFFF, in the zip64 extra."""
    (plain,) = struct.unpack_from("<I", data, size_offset)
    if plain != 0xFFFFFFFF:
        struct.pack_into("<I", data, size_offset, declared)
        return
    position, end = extra_start, extra_start + extra_length
    while position + 4 <= end:
        tag, length = struct.unpack_from("<HH", data, position)
        if tag == 0x0001:
            # zip64 extra: uncompressed size comes first whenever it is present
            struct.pack_into("<Q", data, position + 4, declared)
            return
        position += 4 + length
    raise AssertionError("zip64 extra field not found" + (" (local)" if local else ""))


def too_many_entries(path: Path) -> Path:
    parts = base_parts()
    parts.update({f"xl/media/pad{i}.bin": b"" for i in range(2_100)})
    return write_zip(path, parts)


# ---------------------------------------------------------------- sheets with absurd extents

def far_corner(path: Path, unit_line: str = "BCH ĐOÀN THANH NIÊN CÔNG AN TỈNH") -> Path:
    """A valid form plus one text cell at XFD1048576; the dimension tag still says A1:I12."""
    parts = base_parts(unit_line)
    head, tail = split_sheet_data(parts[SHEET])
    assert b'<dimension ref="A1:I12"' in head
    corner = b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>'
    parts[SHEET] = head + corner + tail
    return write_zip(path, parts)


def huge_dimension(path: Path) -> Path:
    """A valid form whose `<dimension>` claims the whole 1048576 × 16384 grid."""
    parts = base_parts("BCH ĐOÀN THANH NIÊN BỘ CHỈ HUY QUÂN SỰ TỈNH")
    parts[SHEET] = parts[SHEET].replace(b'<dimension ref="A1:I12"', b'<dimension ref="A1:XFD1048576"', 1)
    assert b"XFD1048576" in parts[SHEET]
    return write_zip(path, parts)


def large_legal(path: Path, rows: int = 95_000, columns: int = 21) -> Path:
    """A valid form with ~2 M number cells below it: just inside every limit, but over a second to read."""
    parts = base_parts("BCH ĐOÀN TRƯỜNG ĐẠI HỌC BÌNH DƯƠNG")
    head, tail = split_sheet_data(parts[SHEET])
    pieces = [b'<c r="' + column_letters(0).encode()]
    pieces += [b'"><v>7</v></c><c r="' + column_letters(i).encode() for i in range(1, columns)]
    pieces.append(b'"><v>7</v></c>')

    def body() -> Iterator[bytes]:
        yield head
        for row in range(100, 100 + rows):
            number = str(row).encode()
            yield b'<row r="' + number + b'">' + number.join(pieces) + b"</row>"
        yield tail

    return write_zip(path, parts, streamed=(SHEET, body()))


def unterminated_tags(path: Path, size: int = 256 * 1024) -> Path:
    """A worksheet of `<c <c <c …` with no `>`: a few kilobytes on disk whatever `size` is."""
    parts = base_parts()
    head, tail = split_sheet_data(parts[SHEET])
    parts[SHEET] = head + (b"<c " * (size // 3)) + tail
    return write_zip(path, parts)


# ---------------------------------------------------------------- XML entities

XXE_DOCTYPE = b'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
LAUGHS_DOCTYPE = (
    b'<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%s;" % (str(i - 1).encode() if i > 1 else b"")) * 10)
        for i in range(1, 10)
    )
    + b"]>"
)
_SST = ('<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1">'
        "<si><t>&{entity};</t></si></sst>")


def _with_shared_string(parts: dict[str, bytes], doctype: bytes, entity: str) -> dict[str, bytes]:
    """Add a sharedStrings part (wired into the package) and make the unit line cell use it."""
    parts["xl/sharedStrings.xml"] = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + doctype
                                     + _SST.format(entity=entity).encode())
    parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(
        b"</Types>",
        b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
        b'officedocument.spreadsheetml.sharedStrings+xml" /></Types>')
    parts["xl/_rels/workbook.xml.rels"] = parts["xl/_rels/workbook.xml.rels"].replace(
        b"</Relationships>",
        b'<Relationship Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
        b'Target="sharedStrings.xml" Id="rId99" /></Relationships>')
    sheet = parts[SHEET]
    start = sheet.index(b'<c r="A2"')
    end = sheet.index(b"</c>", start) + 4
    parts[SHEET] = sheet[:start] + b'<c r="A2" t="s"><v>0</v></c>' + sheet[end:]
    return parts


def xxe_shared_strings(path: Path) -> Path:
    return write_zip(path, _with_shared_string(base_parts(), XXE_DOCTYPE, "xxe"))


def xxe_sheet(path: Path) -> Path:
    parts = base_parts()
    sheet = parts[SHEET]
    sheet = sheet.replace(b"<worksheet", XXE_DOCTYPE + b"<worksheet", 1)
    sheet = sheet.replace(b"<t>BCH", b"<t>&xxe; BCH", 1)
    parts[SHEET] = sheet
    return write_zip(path, parts)


def billion_laughs(path: Path) -> Path:
    return write_zip(path, _with_shared_string(base_parts(), LAUGHS_DOCTYPE, "lol9"))


# ---------------------------------------------------------------- wrong or damaged containers

def encrypted(path: Path) -> Path:
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = io.BytesIO(form_bytes("BCH THÀNH ĐOÀN THỦ DẦU MỘT", form_values(9000)))
    output = io.BytesIO()
    OOXMLFile(plain).encrypt("matkhau123", output)
    path.write_bytes(output.getvalue())
    return path


def truncated(path: Path) -> Path:
    data = form_bytes("BCH THÀNH ĐOÀN TÂN UYÊN", form_values(7000))
    path.write_bytes(data[: len(data) // 2])
    return path


def empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def csv_renamed(path: Path) -> Path:
    lines = [",".join(HEADERS.values())]
    lines += [f"{i + 1},Năm {year},5000,300,20,3,2,5,10" for i, year in enumerate(YEARS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def html_table(path: Path) -> Path:
    """What 'export to Excel' buttons of web apps produce: an HTML table named .xls."""
    header = "".join(f"<th>{text}</th>" for text in HEADERS.values())
    rows = "".join(f"<tr><td>{i + 1}</td><td>Năm {year}</td>" + "<td>10</td>" * 7 + "</tr>"
                   for i, year in enumerate(YEARS))
    path.write_text(f'<html><head><meta charset="utf-8"></head><body><table><tr>{header}</tr>{rows}</table>'
                    "</body></html>", encoding="utf-8")
    return path


def xml_2003(path: Path) -> Path:
    path.write_text('<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n'
                    '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet">'
                    '<Worksheet ss:Name="Sheet1"/></Workbook>', encoding="utf-8")
    return path


def docx_bomb(path: Path) -> Path:
    """A Word document whose body inflates to ~190 MiB of empty paragraphs (~0.2 MB on disk)."""
    parts = {"[Content_Types].xml": b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
             b'package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/'
             b'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
             "word/document.xml": b""}
    head = (b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/'
            b'main"><w:body>')
    body = itertools.chain([head], repeat_to(b"<w:p/>", 190 * 1024 * 1024), [b"</w:body></w:document>"])
    return write_zip(path, parts, streamed=("word/document.xml", body))


def bomb_in_archive(path: Path) -> Path:
    """A zip bomb of a workbook, sent inside an ordinary .zip beside nothing else."""
    inner = bomb_empty_cells(path.with_name(path.name + ".inner.xlsx"))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.write(inner, "bao cao.xlsx")
    inner.unlink()
    return path


def archives_nested_deep(path: Path, depth: int = 5) -> Path:
    """A form inside a zip inside a zip … five archives deep."""
    data = form_bytes("BCH ĐOÀN KHỐI DOANH NGHIỆP TỈNH", form_values(4000))
    name = "bao cao.xlsx"
    for level in range(depth):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(name, data)
        data, name = buffer.getvalue(), f"lop {level}.zip"
    path.write_bytes(data)
    return path


def mail_500_attachments(path: Path) -> Path:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = "someone@example.invalid"
    message["To"] = "bantochuc@example.vn"
    message["Subject"] = "tep"
    message["Date"] = "Mon, 05 Feb 2024 09:00:00 +0700"
    message.set_content("x")
    for i in range(500):
        message.add_attachment(b"x", maintype="application", subtype="octet-stream", filename=f"tep {i}.bin")
    path.write_bytes(message.as_bytes())
    return path


def xlsx_named_xls(path: Path, unit_line: str, values: Values) -> Path:
    path.write_bytes(form_bytes(unit_line, values))
    return path


def zip_version_too_new(path: Path) -> Path:
    """A valid form whose central directory says its first member needs 'zip version 25.5' to extract."""
    data = bytearray(form_bytes("BCH ĐOÀN KHỐI CÁC CƠ QUAN TỈNH", form_values(2600)))
    entry = data.find(b"PK\x01\x02")
    assert entry > 0
    data[entry + 6] = 0xFF  # version needed to extract, in tenths
    path.write_bytes(bytes(data))
    return path


# Legacy .xls inputs need a real BIFF8 writer; LibreOffice is the one at hand.

def soffice_convert(source: Path, extension: str, outdir: Path, timeout: float = 120) -> Path | None:
    """`source` saved by LibreOffice as `extension` (xls, ods); None when LibreOffice is missing or fails."""
    binary = shutil.which("soffice") or shutil.which("libreoffice")
    if binary is None:
        return None
    outdir.mkdir(parents=True, exist_ok=True)
    profile = outdir / ".lo-profile"
    try:
        subprocess.run([binary, f"-env:UserInstallation={profile.resolve().as_uri()}", "--headless",
                        "--convert-to", extension, "--outdir", str(outdir), str(source)],
                       capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    target = outdir / f"{source.stem}.{extension}"
    return target if target.exists() and target.stat().st_size > 0 else None


def truncated_xls(path: Path, xls: bytes, missing: int = 16) -> Path:
    """A genuine .xls with its last `missing` bytes gone, as an interrupted download leaves it."""
    path.write_bytes(xls[:-missing])
    return path


def xls_far_dimension(path: Path, xls: bytes, rows: int = 1 << 20, columns: int = 1 << 14) -> Path:
    """A genuine .xls whose DIMENSIONS record claims rows × columns (BIFF8 itself stops at 65536 × 256)."""
    import olefile

    path.write_bytes(xls)
    with olefile.OleFileIO(str(path), write_mode=True) as ole:
        stream = bytearray(ole.openstream("Workbook").read())
        position, patched = 0, False
        while position + 4 <= len(stream):
            kind, length = struct.unpack_from("<HH", stream, position)
            if kind == 0x0200 and length >= 14:  # DIMENSIONS: first row, last row + 1, first col, last col + 1
                struct.pack_into("<IIHH", stream, position + 4, 0, rows, 0, columns)
                patched = True
            position += 4 + length
        assert patched, "no DIMENSIONS record"
        ole.write_stream("Workbook", bytes(stream))
    return path


# ---------------------------------------------------------------- workbooks that mislead

def hidden_form_only(path: Path) -> Path:
    """The form sits on a hidden sheet; the visible sheet holds only a note."""
    workbook = openpyxl.Workbook()
    notes = workbook.active
    notes.title = "Ghi chú"
    notes["A1"] = "Số liệu xem ở trang khác"
    hidden = workbook.create_sheet("Biểu mẫu")
    fill_form(hidden, "BCH ĐOÀN TRƯỜNG ĐẠI HỌC THỦ DẦU MỘT", form_values(5000))
    hidden.sheet_state = "hidden"
    workbook.save(path)
    return path


def hidden_then_visible(path: Path, unit_line: str, visible: Values, hidden: Values) -> Path:
    """A hidden form-like sheet with other numbers comes first; the visible form is the real one."""
    workbook = openpyxl.Workbook()
    old = workbook.active
    old.title = "Bản cũ"
    fill_form(old, unit_line, hidden)
    old.sheet_state = "hidden"
    current = workbook.create_sheet("Biểu mẫu")
    fill_form(current, unit_line, visible)
    workbook.active = 1
    workbook.save(path)
    return path


FORMULA_CELL = cell_of(2022, "outstanding_members")


def formula_without_value(path: Path) -> Path:
    """openpyxl stores formulas without a cached result, as no spreadsheet program would."""
    workbook = form_workbook("BCH ĐOÀN TRƯỜNG ĐẠI HỌC QUỐC TẾ MIỀN ĐÔNG", form_values(3000))
    workbook.active[FORMULA_CELL] = f"=ROUND({cell_of(2022, 'members_total')}*0.06,0)"
    workbook.save(path)
    return path


VBA_CONTENT_TYPE = b"application/vnd.ms-excel.sheet.macroEnabled.main+xml"


def macro_workbook(path: Path, unit_line: str, values: Values) -> Path:
    """An .xlsm: a valid form plus a VBA project part (an OLE container with a stand-in payload)."""
    parts = zip_parts(form_bytes(unit_line, values))
    parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(
        b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml", VBA_CONTENT_TYPE
    ).replace(b"</Types>", b'<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject" />'
                           b"</Types>")
    parts["xl/_rels/workbook.xml.rels"] = parts["xl/_rels/workbook.xml.rels"].replace(
        b"</Relationships>",
        b'<Relationship Type="http://schemas.microsoft.com/office/2006/relationships/vbaProject" '
        b'Target="vbaProject.bin" Id="rId98" /></Relationships>')
    parts["xl/vbaProject.bin"] = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
                                  + b'Attribute VB_Name = "ThisWorkbook"\r\nSub Workbook_Open()\r\n'
                                    b'Shell "cmd /c calc"\r\nEnd Sub\r\n')
    assert VBA_CONTENT_TYPE in parts["[Content_Types].xml"]
    return write_zip(path, parts)


def injection_unit_line(path: Path) -> Path:
    """A form whose unit line is the text `=HYPERLINK(…)`; nothing identifies the unit."""
    return write_form(path, EVIL_FORMULA, form_values(6000))


# ---------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Hostile:
    name: str  # inbox file name
    make: Callable[[Path], Path]
    codes: frozenset[str]  # the file's issues must contain one of these error codes
    cell: str = ""  # where the issue must point, when it concerns one cell
    screened: bool = True  # rejected by screening alone, before any parser runs
    extra_codes: frozenset[str] = field(default_factory=frozenset)  # further errors it may legitimately get


def _codes(*codes: str) -> frozenset[str]:
    return frozenset(codes)


# Files the run must reject. Their names name no unit, so none of them competes with a valid file.
CORPUS: tuple[Hostile, ...] = (
    Hostile("bomb_empty_cells.xlsx", bomb_empty_cells, _codes("zip_bomb")),
    Hostile("bomb_styled_cells.xlsx", bomb_styled_cells, _codes("zip_bomb")),
    Hostile("bomb_value_cells.xlsx", bomb_value_cells, _codes("zip_bomb")),
    # Headers that understate the size: caught by the CRC (plain patch) or by the parser's own size check
    # (CRC patched too); either way rejected before anything inflates past the declared size.
    Hostile("understated_size.xlsx", understated_size, _codes("zip_bomb", "file_unreadable")),
    Hostile("understated_size_crc.xlsx", lambda p: understated_size(p, matching_crc=True),
            _codes("zip_bomb", "file_unreadable"), screened=False),
    Hostile("too_many_entries.xlsx", too_many_entries, _codes("zip_too_many_entries")),
    Hostile("far_corner.xlsx", far_corner, _codes("sheet_too_large"), screened=False,
            extra_codes=_codes("unit_unknown")),
    Hostile("huge_dimension.xlsx", huge_dimension, _codes("sheet_too_large"), screened=False,
            extra_codes=_codes("unit_unknown")),
    Hostile("xxe_shared_strings.xlsx", xxe_shared_strings, _codes("xml_dtd")),
    Hostile("xxe_sheet.xlsx", xxe_sheet, _codes("xml_dtd")),
    Hostile("billion_laughs.xlsx", billion_laughs, _codes("xml_dtd")),
    Hostile("password.xlsx", encrypted, _codes("file_encrypted")),
    Hostile("truncated.xlsx", truncated, _codes("file_unreadable")),
    Hostile("zero_bytes.xlsx", empty, _codes("file_empty")),
    Hostile("csv_renamed.xlsx", csv_renamed, _codes("file_text")),
    Hostile("html_table.xls", html_table, _codes("file_html")),
    # Excel 2003 XML is read now; this one is not even well-formed XML (an undeclared prefix).
    Hostile("xml_spreadsheet_2003.xls", xml_2003, _codes("file_unreadable"), screened=False,
            extra_codes=_codes("unit_unknown")),
    Hostile("docx_bomb.docx", docx_bomb, _codes("zip_bomb")),
    Hostile("bomb_in_archive.zip", bomb_in_archive, _codes("zip_bomb"), screened=False),
    Hostile("archives_nested_deep.zip", archives_nested_deep, _codes("container_too_deep"), screened=False),
    Hostile("mail_500_attachments.eml", mail_500_attachments, _codes("container_too_many"), screened=False),
    Hostile("hidden_form_only.xlsx", hidden_form_only, _codes("form_not_found"), screened=False,
            extra_codes=_codes("unit_unknown")),
    Hostile("formula_no_cache.xlsx", formula_without_value, _codes("formula_no_value"), cell=FORMULA_CELL,
            screened=False),
    Hostile("=cmd.xlsx", injection_unit_line, _codes("unit_unknown"), screened=False),
)


@dataclass(frozen=True)
class Valid:
    name: str
    unit: str
    unit_line: str
    values: Values
    kind: str = "plain"  # plain | xls_name | macro | hidden_first | injection_row
    title: str = "Biểu mẫu"
    hidden_values: Values | None = None

    def make(self, path: Path) -> Path:
        if self.kind == "xls_name":
            return xlsx_named_xls(path, self.unit_line, self.values)
        if self.kind == "macro":
            return macro_workbook(path, self.unit_line, self.values)
        if self.kind == "hidden_first":
            return hidden_then_visible(path, self.unit_line, self.values, self.hidden_values or {})
        workbook = form_workbook(self.unit_line, self.values, self.title)
        if self.kind == "injection_row":
            # a stray note two rows under the table: read as a row without a year, never as a value
            sheet = workbook.active
            sheet["C14"] = EVIL_FORMULA
            sheet["C14"].data_type = "s"
        workbook.save(path)
        return path


# Files the run must accept, one unit each. Names and a sheet title start with formula triggers so the
# exports' neutralisation is exercised by accepted rows too.
VALID: tuple[Valid, ...] = (
    Valid("Dau Tieng.xlsx", "DT", "BCH HUYỆN ĐOÀN DẦU TIẾNG", form_values(5000)),
    Valid("-Phu Giao.xlsx", "PG", "BCH HUYỆN ĐOÀN PHÚ GIÁO", form_values(4200)),
    Valid("@Thuan An.xlsx", "TA", "BCH THÀNH ĐOÀN THUẬN AN", form_values(15000), kind="injection_row"),
    Valid("Di An.xlsx", "DA", "BCH THÀNH ĐOÀN DĨ AN", form_values(14000), title="+1 Biểu mẫu"),
)
ACCEPTED_HOSTILE: tuple[Valid, ...] = (
    Valid("real_xlsx_named.xls", "BC", "BCH THÀNH ĐOÀN BẾN CÁT", form_values(8000), kind="xls_name"),
    Valid("macro.xlsm", "BB", "BCH HUYỆN ĐOÀN BÀU BÀNG", form_values(3500), kind="macro"),
    Valid("hidden_then_visible.xlsx", "BTU", "BCH HUYỆN ĐOÀN BẮC TÂN UYÊN", form_values(3800),
          kind="hidden_first", hidden_values=form_values(9900, quota=90)),
)


# ---------------------------------------------------------------- reading without a safety net


@contextlib.contextmanager
def aborts_expected() -> Iterator[None]:
    """Parser aborts are expected inside; keep the fault handler's dump of each one out of the test log
    (forked readers inherit the handler pytest installs)."""
    import faulthandler
    import sys

    enabled = faulthandler.is_enabled()
    faulthandler.disable()
    try:
        yield
    finally:
        if enabled:
            faulthandler.enable(file=sys.__stderr__)


@dataclass(frozen=True)
class ChildRead:
    """How a direct `read_submission` call ended: a result, a Python exception, or a signal."""

    result: object | None = None  # ReadResult
    raised: str = ""  # "module.Type: message"
    signal: int = 0


def read_in_child(path: Path, form, *, memory_mb: int = 1536, seconds: int = 60) -> ChildRead:
    """Call `read_submission` directly, in a forked child so that a parser abort, a memory blow-up or a
    hang ends that child instead of the test session. The child gets an address-space cap and an alarm."""
    import faulthandler
    import os
    import pickle
    import signal as signals

    if not hasattr(os, "fork"):
        import pytest

        pytest.skip("not on Windows: the direct read runs in a forked child with an address-space cap")
    import resource

    from pipeline.read.spreadsheet import read_submission

    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            os.close(reader)
            faulthandler.disable()  # an abort is an outcome here, not something to dump a traceback for
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            with open("/proc/self/statm") as handle:
                current = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            cap = current + memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
            signals.alarm(seconds)
            try:
                payload = ("result", read_submission(path, form))
            except BaseException as exc:  # the point: report whatever escapes, whatever its class
                payload = ("raised", f"{type(exc).__module__}.{type(exc).__name__}: {str(exc)[:300]}")
            data = pickle.dumps(payload)
            with os.fdopen(writer, "wb") as out:
                out.write(data)
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    os.close(writer)
    with os.fdopen(reader, "rb") as incoming:
        data = incoming.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return ChildRead(signal=os.WTERMSIG(status))
    if not data:
        return ChildRead(raised=f"child exited with status {os.WEXITSTATUS(status)} and no result")
    kind, value = pickle.loads(data)
    return ChildRead(result=value) if kind == "result" else ChildRead(raised=value)

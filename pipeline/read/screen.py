"""Look at a file's bytes before any parser does.

Parsers trust their input: a 1.6 KB workbook with one far-corner cell aborts python-calamine,
a zip bomb drives openpyxl past 10 GiB, and an encrypted workbook looks like a broken .xls.
This module decides what a file really is from its bytes, and refuses what no parser should see.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePath
from typing import NamedTuple
from collections.abc import Callable

from pipeline.core.cells import column_letters, column_number
from pipeline.core.issues import Issue, make_issue

CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass(frozen=True)
class Limits:
    """Caps a real submission never comes near (a filled form is ~10 KB, a few hundred cells)."""

    max_file_bytes: int = 100 * 1024 * 1024
    max_entries: int = 2_000
    max_total_uncompressed: int = 200 * 1024 * 1024
    max_entry_ratio: float = 200.0
    ratio_floor: int = 1 * 1024 * 1024  # below this uncompressed size a ratio says nothing
    max_rows: int = 100_000
    max_columns: int = 1_024
    max_cells: int = 2_000_000
    convert_seconds: float = 20.0  # LibreOffice converting a legacy document (.doc, .rtf)


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Screened:
    """What the file is: a workbook ('xlsx' for any OOXML workbook, 'xlsb', 'ods', 'xls', 'xml2003'), a
    document whose tables may hold the form ('docx', 'odt', and 'doc'/'rtf' which only LibreOffice reads),
    a container whose members are submissions of their own ('zip', 'eml', 'msg'), a scan or picture
    ('pdf', 'image': a signed copy, never the form), or a rejection."""

    kind: str
    issue: Issue | None = None
    decrypted: bytes | None = None  # an .xls protected only by Excel's built-in default password
    oversized_sheets: tuple[str, ...] = ()  # zip member paths of worksheets too large to parse


def _reject(code: str, **fields: object) -> Screened:
    return Screened(kind="rejected", issue=make_issue(code, **fields))


def screen(path: PurePath, limits: Limits = DEFAULT_LIMITS, raw: bytes | None = None) -> Screened:
    if raw is None:
        try:
            raw = read_inbox_file(Path(path), limits)
        except OSError as exc:
            return Screened(kind="rejected", issue=read_failure(exc, limits))
    elif len(raw) > limits.max_file_bytes:
        return _reject("file_too_large", size=_megabytes(len(raw)), limit=_megabytes(limits.max_file_bytes))
    head = raw[:4096]
    if not head:
        return _reject("file_empty")
    if head.startswith(ZIP_MAGIC):
        return _screen_zip(path, raw, limits)
    if head.startswith(CFB_MAGIC):
        return _screen_cfb(path, raw, limits)
    return _classify_other(head, path)


class FileTooLarge(OSError):
    def __init__(self, size: int, sha256: str = "") -> None:
        super().__init__(f"{size} bytes")
        self.size = size
        self.sha256 = sha256  # of the whole file, hashed from the same open handle; "" when not known


class NotRegularFile(OSError):
    """The inbox entry is no longer the regular file the scan listed (a link, pipe, device, folder)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"not a regular file: {kind}")
        self.kind = kind  # Vietnamese, for the issue

    @property
    def detail(self) -> str:
        return f"tệp đã bị thay đổi trong lúc đọc: không còn là tệp thông thường mà là {self.kind}"


_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
_FOLLOWS_LINKS = not hasattr(os, "O_NOFOLLOW")  # Windows: no way to refuse a link at open time
_LINK_ERRORS = {errno.ELOOP, getattr(errno, "EMLINK", errno.ELOOP), getattr(errno, "EFTYPE", errno.ELOOP)}
_BLOCK = 1 << 20


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "một liên kết (symlink)"
    if stat.S_ISFIFO(mode):
        return "một ống dẫn (FIFO)"
    if stat.S_ISDIR(mode):
        return "một thư mục"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "một tệp thiết bị"
    if stat.S_ISSOCK(mode):
        return "một socket"
    return "một mục không phải tệp"


def read_inbox_file(path: Path | str, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The whole content of an inbox entry, read once, from one handle, unless it is larger than any
    submission could be (FileTooLarge, carrying the file's sha256).

    The scan listed a regular file, but the entry may have been swapped since. The last path component
    is opened without following a link and without blocking (a FIFO would wait for a writer for ever),
    and the handle, not the name, must be a regular file; else NotRegularFile. Every reader of a
    submission goes through here, so what is hashed is what is judged.
    """
    if _FOLLOWS_LINKS:
        # Best effort where open() cannot refuse links: a link swapped in between here and the open wins.
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            mode = stat.S_IFREG  # let the open report it
        if not stat.S_ISREG(mode):
            raise NotRegularFile(_kind(mode))
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno in _LINK_ERRORS:
            raise NotRegularFile(_kind(stat.S_IFLNK)) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(_kind(info.st_mode))
        cap = limits.max_file_bytes
        if info.st_size > cap:
            raise FileTooLarge(info.st_size, _hash_rest(fd, hashlib.sha256()))
        # One read of the size fstat gave, one more to see the end; a file still growing is read on, up
        # to one byte past the cap.
        blocks: list[bytes] = []
        total, want = 0, info.st_size + 1
        while block := os.read(fd, min(want, cap + 1 - total)):
            blocks.append(block)
            total += len(block)
            if total > cap:
                digest = hashlib.sha256()
                for part in blocks:
                    digest.update(part)
                size = max(total, os.fstat(fd).st_size)
                raise FileTooLarge(size, _hash_rest(fd, digest))
            want = _BLOCK
        return blocks[0] if len(blocks) == 1 else b"".join(blocks)
    finally:
        os.close(fd)


def _hash_rest(fd: int, digest) -> str:
    """The digest, updated with the handle's bytes from where it stands to the end."""
    while block := os.read(fd, _BLOCK):
        digest.update(block)
    return digest.hexdigest()


read_bounded = read_inbox_file  # the former name


def read_failure(exc: OSError, limits: Limits = DEFAULT_LIMITS) -> Issue:
    """The issue of a file `read_inbox_file` could not read."""
    if isinstance(exc, FileTooLarge):
        return make_issue("file_too_large", size=_megabytes(exc.size), limit=_megabytes(limits.max_file_bytes))
    if isinstance(exc, NotRegularFile):
        detail = exc.detail
    elif exc.errno == errno.ENOENT:
        detail = "tệp đã bị xoá hoặc đổi tên sau khi quét hộp thư"
    else:
        return make_issue("file_unreadable", detail=exc.strerror or type(exc).__name__)
    return make_issue("file_changed", detail=detail)


# ---------------------------------------------------------------- non-spreadsheet content

_HTML_MARKERS = (b"<html", b"<!doctype html", b"<table", b"<head", b"<body", b"<meta")


def _classify_other(head: bytes, path: PurePath) -> Screened:
    extension = path.suffix or "(không đuôi)"
    probe = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if _is_xml2003(head):  # before the HTML markers: its <Table> is one
        return Screened(kind="xml2003")
    if _looks_like_mail(head):  # a saved mail may carry an HTML body in its first kilobyte
        return Screened(kind="eml")
    if any(marker in probe[:1024] for marker in _HTML_MARKERS):
        return _reject("file_html", extension=extension)
    if probe.startswith(b"%pdf"):
        return Screened(kind="pdf")
    if head.startswith(_IMAGE_MAGIC):
        return Screened(kind="image")
    if probe.startswith(b"{\\rtf"):
        return Screened(kind="rtf")
    if _looks_like_text(head):
        return _reject("file_text", extension=extension)
    return _reject("file_not_spreadsheet", kind="dữ liệu không rõ định dạng", extension=extension)


_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")
_MAIL_HEADER = re.compile(rb"^(?:From|To|Subject|Date|Received|Return-Path|Message-ID|MIME-Version|"
                          rb"Content-Type|X-[\w-]+|Delivered-To|Reply-To|Cc|DKIM-Signature|Thread-Topic):[ \t]",
                          re.IGNORECASE | re.MULTILINE)


def _looks_like_mail(head: bytes) -> bool:
    """An RFC 5322 message saved to disk (.eml): it starts with header lines, several of the usual ones."""
    probe = head.lstrip(b"\xef\xbb\xbf\r\n")
    if not re.match(rb"[\w-]+:[ \t]", probe):
        return False
    found = {m.group(0).split(b":")[0].lower() for m in _MAIL_HEADER.finditer(probe[:4096])}
    return len(found) >= 3 and (b"from" in found or b"received" in found or b"mime-version" in found)


def _is_xml2003(head: bytes) -> bool:
    """Excel 2003 XML Spreadsheet, in UTF-8 or UTF-16 (with its byte-order mark)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            head = head.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            return False
    probe = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return probe.startswith(b"<?xml") and b"urn:schemas-microsoft-com:office:spreadsheet" in head


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        # UTF-16 text (Excel's "Unicode text" export) has NULs between ASCII letters.
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            return True
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the 4096-byte boundary is still text.
        if exc.start >= len(head) - 3:
            return True
        try:
            head.decode("cp1258")
            return sum(b < 0x20 and b not in (9, 10, 13) for b in head) == 0
        except UnicodeDecodeError:
            return False


# ---------------------------------------------------------------- CFB: legacy .xls or encrypted OOXML

_FILEPASS = 0x002F
_DIMENSIONS = 0x0200
_CELL_RECORDS = {0x0203, 0x027E, 0x00FD, 0x0204, 0x0201, 0x0006, 0x0205, 0x0208, 0x00D6}
_SPAN_RECORDS = {0x00BD, 0x00BE}  # MULRK, MULBLANK: first column at 2, last column in the final two bytes


@dataclass(frozen=True)
class BiffExtent:
    rows: int
    columns: int
    cells: int
    encrypted: bool


def biff_extent(stream: bytes) -> BiffExtent:
    """Largest row/column any record claims, and whether the workbook carries a FILEPASS record."""
    rows = columns = cells = 0
    position, size = 0, len(stream)
    unpack = struct.unpack_from
    while position + 4 <= size:
        kind, length = unpack("<HH", stream, position)
        body = position + 4
        if kind == _FILEPASS:
            return BiffExtent(rows, columns, cells, True)
        if kind == _DIMENSIONS and length >= 10 and body + 10 <= size:
            first_row, last_row, first_col, last_col = unpack("<IIHH", stream, body)
            rows, columns = max(rows, last_row), max(columns, last_col)
        elif kind in _CELL_RECORDS and length >= 4 and body + 4 <= size:
            row, col = unpack("<HH", stream, body)
            rows, columns, cells = max(rows, row + 1), max(columns, col + 1), cells + 1
        elif kind in _SPAN_RECORDS and length >= 6 and body + length <= size:
            row, = unpack("<H", stream, body)
            last, = unpack("<H", stream, body + length - 2)
            rows, columns = max(rows, row + 1), max(columns, last + 1)
            cells += max(0, (length - 6) // 6)
        position = body + length
    return BiffExtent(rows, columns, cells, False)


_XLSB_ROW, _XLSB_DIMENSION = 0x0000, 0x0094
_XLSB_CELLS = range(0x01, 0x0C)  # blank … formula cells: the column comes first
_XLSB_SHORT_CELLS = range(0x0C, 0x13)  # the compact forms: the column follows the previous cell's


def xlsb_extent(stream: bytes) -> BiffExtent:
    """Largest row and column a binary worksheet (BIFF12) claims, and its cell count."""
    rows = columns = cells = 0
    row = column = -1
    position, size = 0, len(stream)
    try:
        while position < size:
            kind = stream[position] & 0x7F
            if stream[position] & 0x80:
                position += 1
                kind |= (stream[position] & 0x7F) << 7
            position += 1
            length = shift = 0
            for _ in range(4):
                byte = stream[position]
                position += 1
                length |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            body = position
            if kind == _XLSB_DIMENSION and length >= 16:
                _, last_row, _, last_column = struct.unpack_from("<IIII", stream, body)
                rows, columns = max(rows, last_row + 1), max(columns, last_column + 1)
            elif kind == _XLSB_ROW and length >= 4:
                row, = struct.unpack_from("<I", stream, body)
                rows, column = max(rows, row + 1), -1
            elif kind in _XLSB_CELLS and length >= 4:
                column, = struct.unpack_from("<I", stream, body)
                columns, cells = max(columns, column + 1), cells + 1
            elif kind in _XLSB_SHORT_CELLS:
                column += 1
                columns, cells = max(columns, column + 1), cells + 1
            position = body + length
    except (IndexError, struct.error):
        pass  # a damaged stream: what was read stands, and calamine judges the rest
    return BiffExtent(rows, columns, cells, False)


def _screen_cfb(path: PurePath, raw: bytes, limits: Limits) -> Screened:
    import olefile

    try:
        with olefile.OleFileIO(raw) as ole:
            streams = {"/".join(entry).lower(): entry for entry in ole.listdir(streams=True, storages=False)}
            if "encryptedpackage" in streams or "encryptioninfo" in streams:
                return _reject("file_encrypted")
            name = "workbook" if "workbook" in streams else "book" if "book" in streams else ""
            if not name:
                if "worddocument" in streams:
                    return Screened(kind="doc")  # read by converting it with LibreOffice, where installed
                if any(key.startswith("__substg1.0_") for key in streams):
                    return Screened(kind="msg")  # an Outlook message saved to disk
                return _reject("file_not_spreadsheet", kind="tài liệu Office không phải bảng tính",
                               extension=path.suffix or "(không đuôi)")
            stream = ole.openstream(streams[name]).read(limits.max_file_bytes)
    except Exception as exc:  # olefile raises plain OSError/struct errors on damaged containers
        return _reject("file_unreadable", detail=f"vùng chứa OLE hỏng: {type(exc).__name__}")
    extent = biff_extent(stream)
    if extent.encrypted:
        return _decrypt_default_password(raw)
    if extent.rows > limits.max_rows or extent.columns > limits.max_columns or extent.cells > limits.max_cells \
            or extent.rows * extent.columns > limits.max_cells:
        return _reject("sheet_too_large", sheet="", extent=f"{extent.rows} hàng × {extent.columns} cột")
    return Screened(kind="xls")


def _decrypt_default_password(raw: bytes) -> Screened:
    """Excel encrypts a workbook whose structure is protected with a fixed, public password; such a file
    opens without asking anyone, so it is not "password protected" to the unit."""
    import msoffcrypto

    try:
        office = msoffcrypto.OfficeFile(io.BytesIO(raw))
        office.load_key(password="VelvetSweatshop")
        buffer = io.BytesIO()
        office.decrypt(buffer)
        return Screened(kind="xls", decrypted=buffer.getvalue())
    except Exception:  # any real password: the unit has to remove it
        return _reject("file_encrypted")


# ---------------------------------------------------------------- zip: OOXML or ODS

_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\b[^<>]*?\bref="([A-Z]{0,4})([0-9]{0,8}):?([A-Z]{0,4})([0-9]{0,8})"')
_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)


_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_XML_SUFFIXES = (".xml", ".rels", ".vml")


class ZipMember(NamedTuple):
    """What the screen needs of one central directory entry (the same names as zipfile.ZipInfo).
    A tuple: a form's archive has a dozen entries, and a frozen dataclass costs a microsecond each."""

    filename: str
    flag_bits: int
    compress_type: int
    compress_size: int
    file_size: int
    header_offset: int

    def is_dir(self) -> bool:
        return self.filename.endswith("/")


_END_RECORD = struct.Struct("<4s4H2LH")
_CENTRAL_RECORD = struct.Struct("<4s6H3L5H2L")


def _end_records(raw: bytes) -> list[int]:
    """Where the end-of-directory record may start, most likely first.

    The archive comment may itself hold the signature bytes (even a whole fake record), and some mail
    gateways append bytes after the archive. Records whose comment ends the file come first, then the
    last one; only a record whose directory reads back is taken.
    """
    floor = max(0, len(raw) - _END_RECORD.size - 0xFFFF)
    exact: list[int] = []
    last_complete = None
    end = len(raw)
    while (end := raw.rfind(b"PK\x05\x06", floor, end)) >= 0:
        if end + _END_RECORD.size <= len(raw):
            comment_length = _END_RECORD.unpack_from(raw, end)[-1]
            if end + _END_RECORD.size + comment_length == len(raw):
                exact.append(end)
            elif last_complete is None:
                last_complete = end
    # A few candidates: a comment packed with fake records is for zipfile to judge, not worth a scan.
    return exact[:8] + ([last_complete] if last_complete is not None else [])


def zip_members(raw: bytes) -> list[ZipMember] | None:
    """The central directory of a plain single-disk zip, as every spreadsheet program writes one.

    None for anything else (zip64, data before the archive, a damaged directory): zipfile reads those.
    zipfile builds a full ZipInfo per entry, several times the cost of the whole screen of a small form.
    """
    for end in _end_records(raw):
        members = _directory(raw, end)
        if members is not None:
            return members
    return None


def _directory(raw: bytes, end: int) -> list[ZipMember] | None:
    _, disk, directory_disk, here, count, size, offset, _ = _END_RECORD.unpack_from(raw, end)
    if disk or directory_disk or here != count or count == 0xFFFF or offset + size != end:
        return None
    members: list[ZipMember] = []
    position = offset
    for _ in range(count):
        if position + _CENTRAL_RECORD.size > end:
            return None
        fields = _CENTRAL_RECORD.unpack_from(raw, position)
        (signature, _, needed, flags, method, _, _, _, compressed, uncompressed,
         name_length, extra_length, comment_length, _, _, _, header_offset) = fields
        # Versions past 6.3 and zip64 sizes: zipfile decides (it refuses the former).
        zip64 = 0xFFFFFFFF in (compressed, uncompressed, header_offset)
        if signature != b"PK\x01\x02" or (needed & 0xFF) > 63 or zip64:
            return None
        start = position + _CENTRAL_RECORD.size
        name = raw[start:start + name_length].decode("utf-8" if flags & 0x800 else "cp437", "replace")
        members.append(ZipMember(name.split("\x00", 1)[0], flags, method, compressed, uncompressed, header_offset))
        position = start + name_length + extra_length + comment_length
    return members if position == end else None


def _screen_zip(path: PurePath, raw: bytes, limits: Limits) -> Screened:
    entries: list = zip_members(raw) or []
    if not entries:
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                entries = archive.infolist()
        except Exception as exc:  # zipfile raises BadZipFile, NotImplementedError, struct errors…
            return _reject("file_unreadable", detail=f"tệp nén hỏng hoặc bị cắt cụt ({type(exc).__name__})")
    if len(entries) > limits.max_entries:
        return _reject("zip_too_many_entries", count=len(entries), limit=limits.max_entries)
    declared = sum(max(e.file_size, 0) for e in entries)
    if declared > limits.max_total_uncompressed:
        return _reject("zip_bomb", size=_megabytes(declared))
    by_name = {e.filename: e for e in entries}
    kind = _zip_kind(lambda name, cap: _peek(raw, by_name[name], limits, cap), by_name.keys())
    if kind is None:
        if "ppt/presentation.xml" in by_name:
            return _reject("file_not_spreadsheet", kind="bản trình chiếu PowerPoint",
                           extension=path.suffix or "(không đuôi)")
        # A plain archive: each member is screened on its own when the container is opened.
        return Screened(kind="zip")
    oversized: list[str] = []
    budget = limits.max_total_uncompressed
    for entry in entries:
        if entry.is_dir():
            continue
        if entry.flag_bits & 0x1:
            return _reject("file_encrypted")
        is_sheet = kind == "xlsx" and entry.filename.startswith("xl/worksheets/") and entry.filename.endswith(".xml")
        try:
            data = _inflate(raw, entry, limits, budget)
        except (zipfile.BadZipFile, zlib.error, struct.error, ValueError, IndexError) as exc:
            return _reject("file_unreadable",
                           detail=f"phần \"{entry.filename}\" trong tệp bị hỏng ({type(exc).__name__})")
        if isinstance(data, Screened):
            return data
        budget -= len(data)
        if entry.filename.endswith(_XML_SUFFIXES) and b"<!" in data and _DTD.search(data):
            return _reject("xml_dtd")
        if is_sheet and _sheet_too_large(data, limits):
            oversized.append(entry.filename)
        if kind == "xlsb" and entry.filename.startswith("xl/worksheets/") and entry.filename.endswith(".bin"):
            extent = xlsb_extent(data)
            if extent.rows > limits.max_rows or extent.columns > limits.max_columns or \
                    extent.cells > limits.max_cells or extent.rows * extent.columns > limits.max_cells:
                # calamine allocates the whole rectangle of a binary sheet: a far corner would take the reader down
                return _reject("sheet_too_large", sheet="", extent=f"{extent.rows} hàng × {extent.columns} cột")
    return Screened(kind=kind, oversized_sheets=tuple(oversized))


def _peek(raw: bytes, entry, limits: Limits, cap: int) -> bytes:
    """The start of a member, for telling what the archive is; b"" when it cannot be read."""
    try:
        data = _inflate(raw, entry, limits, limits.max_total_uncompressed)
    except (zipfile.BadZipFile, zlib.error, struct.error, ValueError, IndexError):
        return b""
    return data[:cap] if isinstance(data, bytes) else b""


def _inflate(raw: bytes, entry: zipfile.ZipInfo, limits: Limits, budget: int) -> bytes | Screened:
    """Decompress one member from the file's bytes, stopping one byte past what it may hold.

    The headers' sizes may lie, so the cap comes from the compressed size (a ratio) and the run's
    remaining budget, never from the declared uncompressed size.
    """
    header = _LOCAL_HEADER.unpack_from(raw, entry.header_offset)
    if header[0] != b"PK\x03\x04":
        raise zipfile.BadZipFile("bad local header")
    start = entry.header_offset + _LOCAL_HEADER.size + header[9] + header[10]
    body = raw[start:start + entry.compress_size]
    if len(body) < entry.compress_size:
        raise zipfile.BadZipFile("truncated member")
    cap = min(budget, max(limits.ratio_floor, int(entry.compress_size * limits.max_entry_ratio)))
    if entry.compress_type == zipfile.ZIP_STORED:
        data = body
    elif entry.compress_type == zipfile.ZIP_DEFLATED:
        inflater = zlib.decompressobj(-15)
        data = inflater.decompress(body, cap + 1)
    else:
        raise zipfile.BadZipFile(f"compression method {entry.compress_type}")
    if len(data) > cap:
        if cap == budget:
            return _reject("zip_bomb", size=f"trên {_megabytes(limits.max_total_uncompressed)}")
        return _reject("zip_bomb", size=f"tỉ lệ nén trên {limits.max_entry_ratio:.0f} lần")
    return data


def _sheet_too_large(data: bytes, limits: Limits) -> bool:
    # Every row and cell of a worksheet carries r="…" (rows a number, cells letters and a number). A row
    # number with fewer digits than the row cap, or a column with fewer letters than the column cap's,
    # is below the cap; so only references that long need looking at, and a real form has none.
    for match in _long_references(limits).finditer(data):
        if data[match.start() - 1:match.start()] not in _SPACE:
            continue  # another attribute whose name ends in "r"
        letters = match.group(1) if match.group(1) is not None else match.group(3)
        digits = match.group(2) if match.group(2) is not None else match.group(4)
        if int(digits) > limits.max_rows or (letters and column_number(letters) > limits.max_columns):
            return True
    dimension = _DIMENSION.search(data, 0, 4096)
    if dimension and dimension.group(3) and dimension.group(4):
        if column_number(dimension.group(3)) > limits.max_columns or int(dimension.group(4)) > limits.max_rows:
            return True
    if len(data) < 4 * limits.max_cells:  # the shortest cell, <c/>, takes four bytes
        return False
    return data.count(b"<c ") + data.count(b"<c>") + data.count(b"<c/>") > limits.max_cells


_SPACE = (b" ", b"\t", b"\r", b"\n")


@lru_cache(maxsize=8)
def _long_references(limits: Limits) -> re.Pattern[bytes]:
    digits = len(str(limits.max_rows))
    letters = len(column_letters(limits.max_columns - 1))
    # The literal r=" first lets the regex engine skip ahead quickly; the byte before it is checked after.
    return re.compile(rb'r="(?:([A-Z]{%d,})([0-9]+)|([A-Z]*)([0-9]{%d,}))"' % (letters, digits))


def _zip_kind(read: Callable[[str, int], bytes], names) -> str | None:
    """'xlsx', 'xlsb' or 'ods' from the archive's member names; `read(name, cap)` gives a member's start."""
    if "mimetype" in names:
        mimetype = read("mimetype", 200)
        if b"opendocument.spreadsheet" in mimetype:
            return "ods"
        if b"opendocument.text" in mimetype:
            return "odt"
        if mimetype:
            return None
    if "xl/workbook.xml" in names or "xl/workbook.bin" in names:
        return "xlsb" if "xl/workbook.bin" in names and "xl/workbook.xml" not in names else "xlsx"
    if "[Content_Types].xml" in names:
        if b"spreadsheetml" in read("[Content_Types].xml", 200_000):
            return "xlsx"
    if "content.xml" in names and "META-INF/manifest.xml" in names:
        return "ods"
    if "word/document.xml" in names:
        return "docx"
    return None


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB"

"""The tables of a Word document read as the sheets of a workbook, and LibreOffice for the formats only it reads.

The form is distributed at the end of a Word plan, so units often send the whole plan back: a .docx
(the form table on its last page), an .odt, or a legacy .doc. `WordBook` implements the `Workbook`
protocol of `pipeline.read.fallback` over the document's tables: every table of the body, nested
ones included (each right after the table that holds it), is a sheet named "Bảng 1", "Bảng 2", …
Cell texts stay text exactly as typed ("1.250" is the normalizer's to parse), and merged cells come
out as Excel shows them once it has the table: the text in the merged area's top-left position, ""
in the other positions it covers, and the area in the merges list.

The XML is read with defusedxml (no DTD, no entity, nothing external is ever fetched), streamed, and
bounded: a document with more than `MAX_TABLES` tables or a content part larger than
`MAX_PART_BYTES` once inflated raises `WordTooLarge`; a table beyond the limits given to `grid`
raises `SheetTooLarge` before any of its cells is laid out. Text boxes, drawings, comments, notes,
headers and footers, and text deleted under change tracking are not part of any table or preamble.

`convert_with_libreoffice` turns a document only LibreOffice reads (.doc, .rtf, .wps…) into a .docx
this module then reads, in a throwaway LibreOffice profile, under a time limit.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from defusedxml import ElementTree

from pipeline.parallel import pool as parallel
from pipeline.read.fallback import Grid, Merge, SheetTooLarge

__all__ = ["MAX_PART_BYTES", "MAX_TABLES", "PREAMBLE_PARAGRAPHS", "WordBook", "WordTooLarge",
           "convert_with_libreoffice", "libreoffice_available"]

MAX_TABLES = 200
MAX_PART_BYTES = 50 * 1024 * 1024  # the document part (word/document.xml, content.xml), inflated
PREAMBLE_PARAGRAPHS = 30
SHEET_NAME = "Bảng {}"
_MAX_RELS_BYTES = 1024 * 1024
_MAX_SPACES = 1_000  # one <text:s text:c="…"/> never expands to more than this
_MAX_COUNT = 1 << 31  # spans and repeats beyond this are nonsense; they are refused as too large anyway


class WordTooLarge(Exception):
    """A document beyond what the reader takes on at all (too many tables, too large a content part)."""


# ---------------------------------------------------------------- the tables, laid out

@dataclass(slots=True)
class _Run:
    """Cells of one text at (row, col): `row_repeat` × `col_repeat` positions (ODF repeats; 1 × 1 in
    OOXML), each the top-left of a `rowspan` × `colspan` merged area when either exceeds 1."""

    row: int
    col: int
    text: str
    rowspan: int = 1
    colspan: int = 1
    row_repeat: int = 1
    col_repeat: int = 1


@dataclass(slots=True)
class _Table:
    name: str
    before: int  # how many preamble paragraphs precede the table
    runs: list[_Run] = field(default_factory=list)  # in row order; empty unmerged cells are left out
    height: int = 0
    width: int = 0

    def add(self, run: _Run) -> None:
        if run.text or run.rowspan > 1 or run.colspan > 1:
            self.runs.append(run)

    def grid(self, max_rows: int, max_cells: int, max_columns: int) -> tuple[Grid, list[Merge]]:
        height, width = self.height, self.width
        if width > max_columns or height * width > max_cells:
            raise SheetTooLarge(height, width)
        if width == 0:
            return [], []
        grid: Grid = [[""] * width for _ in range(min(height, max_rows))]
        merges: list[Merge] = []
        for run in self.runs:
            if run.row >= len(grid):
                break
            merged = run.rowspan > 1 or run.colspan > 1
            for r in range(run.row, min(run.row + run.row_repeat, len(grid))):
                row = grid[r]
                for c in range(run.col, min(run.col + run.col_repeat, width)):
                    row[c] = run.text
                    if merged:
                        # A malformed span never reaches past the table.
                        bottom, right = min(r + run.rowspan, height) - 1, min(c + run.colspan, width) - 1
                        if (bottom, right) != (r, c):
                            merges.append(((r, c), (bottom, right)))
        return grid, merges


class _Document:
    """What a parse collects: the tables in document order and the paragraphs a preamble is cut from."""

    def __init__(self) -> None:
        self.tables: list[_Table] = []
        self.paragraphs: list[str] = []  # non-empty, in document order, table cells included

    def new_table(self) -> _Table:
        if len(self.tables) >= MAX_TABLES:
            raise WordTooLarge(f"tài liệu có hơn {MAX_TABLES} bảng")
        table = _Table(SHEET_NAME.format(len(self.tables) + 1), len(self.paragraphs))
        self.tables.append(table)
        return table

    def paragraph(self, text: str) -> str:
        text = text.strip()
        if text:
            self.paragraphs.append(text)
        return text


def _count(value: str | None) -> int:
    """A span or repeat attribute: a positive integer, 1 when absent or unreadable."""
    if not value or not value.strip().isdigit():
        return 1
    return max(1, min(int(value), _MAX_COUNT))


def _cell_text(paragraphs: list[str]) -> str:
    return "\n".join(paragraphs).strip()


class _Bounded:
    """A zip member stream that refuses to inflate beyond `limit` bytes, whatever its header claims."""

    def __init__(self, stream: IO[bytes], limit: int, what: str) -> None:
        self._stream, self._left, self._what = stream, limit, what

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size if size is not None and size >= 0 else self._left + 1)
        self._left -= len(chunk)
        if self._left < 0:
            raise WordTooLarge(_too_large(self._what))
        return chunk


def _too_large(what: str) -> str:
    return f"phần nội dung {what} quá lớn (hơn {MAX_PART_BYTES // (1024 * 1024)} MB khi giải nén)"


def _member(archive: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    """The member of that name, or of that name in another letter case (KeyError when there is none)."""
    try:
        return archive.getinfo(name)
    except KeyError:
        folded = {info.filename.lower(): info for info in archive.infolist()}
        if name.lower() in folded:
            return folded[name.lower()]
        raise KeyError(f"thiếu phần {name}") from None


def _open_part(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Bounded:
    if info.file_size > MAX_PART_BYTES:
        raise WordTooLarge(_too_large(info.filename))
    return _Bounded(archive.open(info), MAX_PART_BYTES, info.filename)


# ---------------------------------------------------------------- OOXML (.docx)

_W_TRANSITIONAL = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_W_STRICT = "http://purl.oclc.org/ooxml/wordprocessingml/main"
_MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
_MATH = "http://schemas.openxmlformats.org/officeDocument/2006/math"
_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_FALSE = ("false", "0", "off")


def _main_part(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    """The package's main document part, as _rels/.rels names it (word/document.xml almost always)."""
    try:
        rels = _member(archive, "_rels/.rels")
    except KeyError:
        return _member(archive, "word/document.xml")
    if rels.file_size <= _MAX_RELS_BYTES:
        root = ElementTree.fromstring(archive.read(rels), forbid_dtd=True)
        for rel in root.iter(f"{{{_RELS}}}Relationship"):
            if rel.get("Type", "").endswith("/officeDocument") and rel.get("TargetMode") != "External":
                target = posixpath.normpath(rel.get("Target", "").lstrip("/"))
                if target and not target.startswith(".."):
                    try:
                        return _member(archive, target)
                    except KeyError:
                        break
    return _member(archive, "word/document.xml")


@dataclass(slots=True)
class _OoxmlTable:
    table: _Table
    row: list[tuple[int, str, str, str]] | None = None  # the open row's cells: span, vMerge, hMerge, text
    cell: list[str] | None = None  # the open cell's paragraphs
    above: dict[int, _Run] = field(default_factory=dict)  # the previous row's cells by first column


def _read_docx(data: bytes) -> _Document:
    document = _Document()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        part = _main_part(archive)
        _parse_docx(_open_part(archive, part), document)
    return document


def _parse_docx(stream: _Bounded, document: _Document) -> None:
    w = _W_TRANSITIONAL
    names: dict[str, str] = {}
    ignored: set[str] = set()
    ignore = 0  # depth inside content that is no part of the body's flow (text boxes, drawings…)
    in_body = False
    open_tables: list[_OoxmlTable] = []
    for event, element in ElementTree.iterparse(stream, events=("start", "end"), forbid_dtd=True):
        tag = element.tag
        if not names:  # the root: transitional or strict namespace
            if tag.startswith(f"{{{_W_STRICT}}}"):
                w = _W_STRICT
            names = {n: f"{{{w}}}{n}" for n in ("body", "p", "tbl", "tr", "tc")}
            ignored = {f"{{{w}}}{n}" for n in ("txbxContent", "drawing", "pict", "object", "del", "moveFrom")}
            ignored.add(f"{{{_MC}}}Fallback")
        if tag in ignored:
            ignore += 1 if event == "start" else -1
            continue
        if tag == names["body"]:
            in_body = event == "start"
            continue
        if ignore or not in_body:
            continue
        if event == "start":
            if tag == names["tbl"]:
                open_tables.append(_OoxmlTable(document.new_table()))
            elif tag == names["tr"] and open_tables:
                open_tables[-1].row = []
            elif tag == names["tc"] and open_tables:
                open_tables[-1].cell = []
            continue
        if tag == names["p"]:
            text = document.paragraph(_docx_paragraph(element, w))
            if open_tables and open_tables[-1].cell is not None:
                open_tables[-1].cell.append(text)
            element.clear()
        elif tag == names["tc"] and open_tables:
            current = open_tables[-1]
            if current.row is not None and current.cell is not None:
                current.row.append((*_docx_cell_properties(element, w), _cell_text(current.cell)))
            current.cell = None
            element.clear()
        elif tag == names["tr"] and open_tables:
            current = open_tables[-1]
            if current.row is not None:
                _docx_row(current, element, w)
            current.row = None
            element.clear()
        elif tag == names["tbl"] and open_tables:
            open_tables.pop()
            element.clear()


def _docx_cell_properties(tc: Any, w: str) -> tuple[int, str, str]:
    """gridSpan, vMerge ("", "restart", "continue") and the legacy hMerge of a w:tc, from its own
    w:tcPr only (a w:tcPrChange inside it holds the properties before a tracked change)."""
    properties = tc.find(f"{{{w}}}tcPr")
    if properties is None:
        return 1, "", ""
    span = properties.find(f"{{{w}}}gridSpan")
    merges = []
    for name in ("vMerge", "hMerge"):
        mark = properties.find(f"{{{w}}}{name}")
        merges.append("" if mark is None else "restart" if mark.get(f"{{{w}}}val") == "restart" else "continue")
    return _count(None if span is None else span.get(f"{{{w}}}val")), merges[0], merges[1]


def _docx_row(current: _OoxmlTable, tr: Any, w: str) -> None:
    """Lay out a finished w:tr: columns from w:gridBefore and each cell's w:gridSpan; a w:vMerge
    continuation extends the cell above it (same first column, same span) down by one row."""
    properties = tr.find(f"{{{w}}}trPr")
    before = 0
    if properties is not None:
        if properties.find(f"{{{w}}}del") is not None:
            return  # a row deleted under change tracking
        skip = properties.find(f"{{{w}}}gridBefore")
        before = 0 if skip is None else _count(skip.get(f"{{{w}}}val"))
    cells: list[list[Any]] = []
    for span, vmerge, hmerge, text in current.row or ():
        if hmerge == "continue" and cells:
            cells[-1][0] += span  # Word 97's horizontal merge: the cell widens the one before it
        else:
            cells.append([span, vmerge, text])
    table = current.table
    r = table.height
    above: dict[int, _Run] = {}
    col = before
    for span, vmerge, text in cells:
        anchor = current.above.get(col) if vmerge == "continue" else None
        if anchor is not None and anchor.colspan == span and anchor.row + anchor.rowspan == r:
            anchor.rowspan += 1
            above[col] = anchor
        else:
            run = _Run(r, col, text, colspan=span)
            table.runs.append(run)  # even empty: a continuation below may still make it a merge
            above[col] = run
        col += span
    current.above = above
    table.height = r + 1
    table.width = max(table.width, col)


def _docx_paragraph(p: Any, w: str) -> str:
    """A w:p's text: w:t runs, tabs as "\\t", line breaks as "\\n"; no deleted or hidden text, no field
    instruction, nothing of text boxes or drawings anchored in it."""
    text_tag, tab, ptab, br, cr, hyphen, run_tag = (
        f"{{{w}}}{n}" for n in ("t", "tab", "ptab", "br", "cr", "noBreakHyphen", "r"))
    skipped = {f"{{{w}}}{n}" for n in ("pPr", "rPr", "sdtPr", "sdtEndPr", "instrText", "delText", "fldData",
                                       "txbxContent", "drawing", "pict", "object", "del", "moveFrom", "rt")}
    skipped.add(f"{{{_MC}}}Fallback")
    math_text = f"{{{_MATH}}}t"
    out: list[str] = []
    stack = list(reversed(p))
    while stack:
        element = stack.pop()
        tag = element.tag
        if tag == text_tag or tag == math_text:
            out.append(element.text or "")
        elif tag == tab or tag == ptab:
            out.append("\t")
        elif tag == br:
            if element.get(f"{{{w}}}type") in (None, "textWrapping"):
                out.append("\n")
        elif tag == cr:
            out.append("\n")
        elif tag == hyphen:
            out.append("-")
        elif tag in skipped or (tag == run_tag and _hidden(element, w)):
            continue
        else:
            stack.extend(reversed(element))
    return "".join(out)


def _hidden(run: Any, w: str) -> bool:
    properties = run.find(f"{{{w}}}rPr")
    vanish = None if properties is None else properties.find(f"{{{w}}}vanish")
    return vanish is not None and vanish.get(f"{{{w}}}val", "true") not in _FALSE


# ---------------------------------------------------------------- ODF (.odt)

_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_DRAW = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"

_O_TEXT = f"{{{_OFFICE}}}text"
_T_TABLE = f"{{{_TABLE}}}table"
_T_ROW = f"{{{_TABLE}}}table-row"
_T_CELL = f"{{{_TABLE}}}table-cell"
_T_COVERED = f"{{{_TABLE}}}covered-table-cell"
_P = f"{{{_TEXT}}}p"
_H = f"{{{_TEXT}}}h"
_S = f"{{{_TEXT}}}s"
_TAB = f"{{{_TEXT}}}tab"
_LINE_BREAK = f"{{{_TEXT}}}line-break"
# Not part of the text flow: deleted text kept for change tracking, comments, foot/endnotes.
_ODF_IGNORED = {f"{{{_TEXT}}}tracked-changes", f"{{{_OFFICE}}}annotation", f"{{{_OFFICE}}}annotation-end",
                f"{{{_TEXT}}}note"}
_DRAW_PREFIX = f"{{{_DRAW}}}"  # frames, text boxes, shapes: any drawing element


@dataclass(slots=True)
class _OdfTable:
    table: _Table
    row: list[tuple[bool, int, int, int, str]] | None = None  # covered, repeat, rowspan, colspan, text
    row_repeat: int = 1
    cell: list[str] | None = None


def _read_odt(data: bytes) -> _Document:
    document = _Document()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        _parse_odt(_open_part(archive, _member(archive, "content.xml")), document)
    return document


def _parse_odt(stream: _Bounded, document: _Document) -> None:
    ignore = 0
    in_text = False
    open_tables: list[_OdfTable] = []
    for event, element in ElementTree.iterparse(stream, events=("start", "end"), forbid_dtd=True):
        tag = element.tag
        if tag in _ODF_IGNORED or tag.startswith(_DRAW_PREFIX):
            ignore += 1 if event == "start" else -1
            continue
        if tag == _O_TEXT:
            in_text = event == "start"
            continue
        if ignore or not in_text:
            continue
        if event == "start":
            if tag == _T_TABLE:
                open_tables.append(_OdfTable(document.new_table()))
            elif tag == _T_ROW and open_tables:
                open_tables[-1].row = []
                open_tables[-1].row_repeat = _count(element.get(f"{{{_TABLE}}}number-rows-repeated"))
            elif (tag == _T_CELL or tag == _T_COVERED) and open_tables:
                open_tables[-1].cell = []
            continue
        if tag == _P or tag == _H:
            text = document.paragraph(_odt_paragraph(element))
            if open_tables and open_tables[-1].cell is not None:
                open_tables[-1].cell.append(text)
            element.clear()
        elif (tag == _T_CELL or tag == _T_COVERED) and open_tables:
            current = open_tables[-1]
            if current.row is not None and current.cell is not None:
                current.row.append((
                    tag == _T_COVERED,
                    _count(element.get(f"{{{_TABLE}}}number-columns-repeated")),
                    _count(element.get(f"{{{_TABLE}}}number-rows-spanned")),
                    _count(element.get(f"{{{_TABLE}}}number-columns-spanned")),
                    _cell_text(current.cell),
                ))
            current.cell = None
            element.clear()
        elif tag == _T_ROW and open_tables:
            current = open_tables[-1]
            if current.row is not None:
                _odt_row(current)
            current.row = None
            element.clear()
        elif tag == _T_TABLE and open_tables:
            open_tables.pop()
            element.clear()


def _odt_row(current: _OdfTable) -> None:
    """Lay out a finished table:table-row: every cell element, covered ones included, takes its
    repeat count of columns; a spanned cell is the top-left of its merged area."""
    table = current.table
    r = table.height
    col = 0
    for covered, repeat, rowspan, colspan, text in current.row or ():
        if not covered:
            table.add(_Run(r, col, text, rowspan, colspan, current.row_repeat, repeat))
        col += repeat
    table.height = r + current.row_repeat
    table.width = max(table.width, col)


def _odt_paragraph(p: Any) -> str:
    """A text:p or text:h's text, spans and links included: <text:s/> as spaces, tabs as "\\t", line
    breaks as "\\n"; no comment, note or drawing anchored in it."""
    out: list[str] = [p.text or ""]
    stack: list[Any] = []
    for child in reversed(p):
        stack.extend((child.tail or "", child))
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        tag = item.tag
        if tag == _S:
            out.append(" " * min(_count(item.get(f"{{{_TEXT}}}c")), _MAX_SPACES))
        elif tag == _TAB:
            out.append("\t")
        elif tag == _LINE_BREAK:
            out.append("\n")
        elif tag in _ODF_IGNORED or tag.startswith(_DRAW_PREFIX):
            continue
        else:
            out.append(item.text or "")
            for child in reversed(item):
                stack.extend((child.tail or "", child))
    return "".join(out)


# ---------------------------------------------------------------- the book

class WordBook:
    """The tables of a .docx (kind "docx") or .odt (kind "odt") document as workbook sheets.

    Raises zipfile.BadZipFile, KeyError (no document part), xml.etree.ElementTree.ParseError, a
    defusedxml.DefusedXmlException (a DTD or entity in the XML) or WordTooLarge on what it cannot read.
    """

    def __init__(self, data: bytes, kind: str) -> None:
        if kind == "docx":
            document = _read_docx(data)
        elif kind == "odt":
            document = _read_odt(data)
        else:
            raise ValueError(f"not a Word document kind: {kind!r}")
        self._tables = {table.name: table for table in document.tables}
        self._paragraphs = document.paragraphs

    def visible_sheets(self) -> list[str]:
        return list(self._tables)

    def sheet_names(self) -> list[str]:
        return list(self._tables)

    def grid(self, name: str, max_rows: int, max_cells: int, max_columns: int) -> tuple[Grid, list[Merge]]:
        return self._tables[name].grid(max_rows, max_cells, max_columns)

    def preamble(self, name: str) -> list[str]:
        """The non-empty paragraphs before that table, nearest last, at most PREAMBLE_PARAGRAPHS: body
        paragraphs and those in the cells of tables before it (the unit line of a heading laid out
        as a borderless two-column table is a cell paragraph), each stripped; a line break within a
        paragraph stays "\\n" in its text."""
        before = self._tables[name].before
        return self._paragraphs[max(0, before - PREAMBLE_PARAGRAPHS):before]


# ---------------------------------------------------------------- LibreOffice

_WINDOWS_PROGRAMS = ("ProgramFiles", "ProgramW6432", "ProgramFiles(x86)")
_MAX_CONVERTED_BYTES = 200 * 1024 * 1024
_DEAD_PROXY_HOST, _DEAD_PROXY_PORT = "127.0.0.1", 9  # the discard port: nothing listens, nothing leaves
_TARGET = re.compile(r"[a-z0-9]{1,10}(?::[A-Za-z0-9 _().,\"-]{1,80})?")
_SUFFIX = re.compile(r"[a-z0-9]{1,10}")


def _soffice() -> str | None:
    """LibreOffice's program: on PATH, else where its installer puts it."""
    for name in ("soffice", "libreoffice"):
        found = shutil.which(name)
        if found:
            return found
    candidates: list[Path] = []
    if sys.platform == "win32":
        bases = [os.environ.get(v) for v in _WINDOWS_PROGRAMS] + [r"C:\Program Files", r"C:\Program Files (x86)"]
        candidates = [Path(b) / "LibreOffice" / "program" / "soffice.exe" for b in bases if b]
    elif sys.platform == "darwin":
        candidates = [Path("/Applications/LibreOffice.app/Contents/MacOS/soffice")]
    return next((str(c) for c in candidates if c.is_file()), None)


def libreoffice_available() -> bool:
    return _soffice() is not None


# Written into the throwaway profile before LibreOffice starts: no macro runs, no linked image or
# document is fetched, and any network access goes to a proxy where nothing listens.
_PROFILE_ITEMS = (
    ("/org.openoffice.Office.Common/Security/Scripting", "MacroSecurityLevel", "3"),
    ("/org.openoffice.Office.Common/Security/Scripting", "DisableMacrosExecution", "true"),
    ("/org.openoffice.Office.Common/Security/Scripting", "BlockUntrustedRefererLinks", "true"),
    ("/org.openoffice.Inet/Settings", "ooInetProxyType", "2"),  # manual
    ("/org.openoffice.Inet/Settings", "ooInetNoProxy", ""),
    *(("/org.openoffice.Inet/Settings", f"ooInet{p}Proxy{k}", v) for p in ("HTTP", "HTTPS", "FTP")
      for k, v in (("Name", _DEAD_PROXY_HOST), ("Port", str(_DEAD_PROXY_PORT)))),
)


def _profile_settings() -> str:
    items = "".join(f'<item oor:path="{path}"><prop oor:name="{name}" oor:op="fuse"><value>{value}</value>'
                    f"</prop></item>\n" for path, name, value in _PROFILE_ITEMS)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema"'
            ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n' + items + "</oor:items>\n")


def convert_with_libreoffice(data: bytes, suffix: str, target: str = "docx", timeout: float = 60.0) -> bytes | None:
    """The document converted by LibreOffice (`soffice --headless --convert-to target`), or None when
    LibreOffice is not installed, or could not convert it within `timeout` seconds.

    `suffix` is the file's extension (".doc", ".rtf"…), which helps LibreOffice pick its import filter;
    `target` an extension, optionally with its filter ("docx", 'docx:"MS Word 2007 XML"'). Every call
    runs in its own throwaway profile (so neither an open LibreOffice of the user's nor another
    conversion is involved), on a copy of the bytes under an ASCII name, and leaves nothing behind.
    """
    if not _TARGET.fullmatch(target):
        raise ValueError(f"not a LibreOffice conversion target: {target!r}")
    program = _soffice()
    if program is None:
        return None
    extension = suffix.lower().lstrip(".")
    extension = extension if _SUFFIX.fullmatch(extension) else "bin"
    work = Path(tempfile.mkdtemp(prefix="tonghop-lo-"))
    try:
        source, outdir, profile = work / "in" / f"input.{extension}", work / "out", work / "profile"
        for folder in (source.parent, outdir, profile / "user"):
            folder.mkdir(parents=True)
        source.write_bytes(data)
        (profile / "user" / "registrymodifications.xcu").write_text(_profile_settings(), encoding="utf-8")
        argv = [program, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--invisible", "--norestore",
                "--nologo", "--nodefault", "--nolockcheck", "--convert-to", target, "--outdir", str(outdir),
                str(source)]
        if parallel.run_program(argv, work, _offline_environment(), timeout) is None:
            return None
        result = outdir / f"input.{target.split(':', 1)[0]}"
        if not result.is_file() or not 0 < result.stat().st_size <= _MAX_CONVERTED_BYTES:
            return None
        return result.read_bytes()
    except OSError:
        return None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _offline_environment() -> dict[str, str]:
    env = dict(os.environ)
    dead = f"http://{_DEAD_PROXY_HOST}:{_DEAD_PROXY_PORT}"
    for name in ("http_proxy", "https_proxy", "ftp_proxy", "all_proxy"):
        env[name] = env[name.upper()] = dead
    env["no_proxy"] = env["NO_PROXY"] = ""
    return env



"""Workbook access behind one small interface: python-calamine first, a second reader if it refuses.

calamine is fast and reads every format, but stumbles on some valid files (Gnumeric's indented
ODS XML, for one). When it raises, the file is opened again with a reader written for that format:
openpyxl for OOXML, xlrd for BIFF, and a streaming ODS reader below. Grids are lists of rows,
0-based, "" for an empty cell, as calamine returns them.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

Grid = list[list[Any]]
Merge = tuple[tuple[int, int], tuple[int, int]]
# A workbook file: its path, or a binary stream over its bytes (then also passed as `data`).
Source = Path | IO[bytes]


def _file(source: Source) -> Path:
    """The path a source names, for a reader that opens the file itself (a stream names none)."""
    if isinstance(source, (str, os.PathLike)):
        return Path(source)
    raise TypeError(f"expected str, bytes or os.PathLike object, not {type(source).__name__}")


class SheetTooLarge(Exception):
    def __init__(self, height: int, width: int) -> None:
        super().__init__(f"{height}x{width}")
        self.height, self.width = height, width


class Workbook(Protocol):
    def visible_sheets(self) -> list[str]: ...

    def sheet_names(self) -> list[str]: ...

    def grid(self, name: str, max_rows: int, max_cells: int, max_columns: int) -> tuple[Grid, list[Merge]]: ...


_EXTENSIONS = {"xlsx": (".xlsx", ".xlsm"), "xls": (".xls",), "ods": (".ods",), "xlsb": (".xlsb",)}


class CalamineBook:
    def __init__(self, path: Source, kind: str, data: bytes | None = None) -> None:
        import python_calamine

        self._module = python_calamine
        if data is None and _file(path).suffix.lower() in _EXTENSIONS.get(kind, ()):
            self._book = python_calamine.CalamineWorkbook.from_path(str(path))
        else:
            # calamine picks its parser by extension; a renamed file is handed over by content instead
            contents = data if data is not None else _file(path).read_bytes()
            self._book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(contents))

    def visible_sheets(self) -> list[str]:
        enum = self._module
        return [m.name for m in self._book.sheets_metadata
                if m.visible == enum.SheetVisibleEnum.Visible and m.typ == enum.SheetTypeEnum.WorkSheet]

    def sheet_names(self) -> list[str]:
        return list(self._book.sheet_names)

    def grid(self, name: str, max_rows: int, max_cells: int, max_columns: int) -> tuple[Grid, list[Merge]]:
        sheet = self._book.get_sheet_by_name(name)
        height, width = sheet.total_height, sheet.total_width
        if width > max_columns or height * width > max_cells:
            raise SheetTooLarge(height, width)
        grid = sheet.to_python(skip_empty_area=False, nrows=max_rows)
        try:
            merged = list(sheet.merged_cell_ranges or [])
        except Exception:  # not every format reports merges; the header logic does without them
            merged = []
        return grid, merged


class OpenpyxlBook:
    def __init__(self, path: Source) -> None:
        import openpyxl  # defusedxml, when installed, is used by openpyxl for every XML part

        self._book = openpyxl.load_workbook(path, data_only=True, read_only=False)

    def visible_sheets(self) -> list[str]:
        return [ws.title for ws in self._book.worksheets if ws.sheet_state == "visible"]

    def sheet_names(self) -> list[str]:
        return list(self._book.sheetnames)

    def grid(self, name: str, max_rows: int, max_cells: int, max_columns: int) -> tuple[Grid, list[Merge]]:
        sheet = self._book[name]
        height, width = sheet.max_row, sheet.max_column
        if width > max_columns or height * width > max_cells:
            raise SheetTooLarge(height, width)
        grid = [["" if cell.value is None else cell.value for cell in row]
                for row in sheet.iter_rows(min_row=1, max_row=min(height, max_rows), max_col=width)]
        merged = [((m.min_row - 1, m.min_col - 1), (m.max_row - 1, m.max_col - 1)) for m in sheet.merged_cells.ranges]
        return grid, merged


class XlrdBook:
    def __init__(self, path: Source, data: bytes | None = None) -> None:
        import xlrd

        contents = data if data is not None else _file(path).read_bytes()
        self._book = xlrd.open_workbook(file_contents=contents, formatting_info=False, on_demand=True)
        self._xlrd = xlrd

    def visible_sheets(self) -> list[str]:
        return [s.name for s in (self._book.sheet_by_index(i) for i in range(self._book.nsheets))
                if s.visibility == 0]

    def sheet_names(self) -> list[str]:
        return list(self._book.sheet_names())

    def grid(self, name: str, max_rows: int, max_cells: int, max_columns: int) -> tuple[Grid, list[Merge]]:
        sheet = self._book.sheet_by_name(name)
        if sheet.ncols > max_columns or sheet.nrows * sheet.ncols > max_cells:
            raise SheetTooLarge(sheet.nrows, sheet.ncols)
        xlrd = self._xlrd
        grid: Grid = []
        for r in range(min(sheet.nrows, max_rows)):
            row: list[Any] = []
            for cell in sheet.row(r):
                if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK, xlrd.XL_CELL_ERROR):
                    row.append("")
                elif cell.ctype == xlrd.XL_CELL_BOOLEAN:
                    row.append(bool(cell.value))
                else:
                    row.append(cell.value)
            grid.append(row)
        merged = [((r0, c0), (r1 - 1, c1 - 1)) for r0, r1, c0, c1 in sheet.merged_cells]
        return grid, merged


_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_STYLE = "urn:oasis:names:tc:opendocument:xmlns:style:1.0"


@dataclass
class _OdsSheet:
    name: str
    visible: bool
    grid: Grid = field(default_factory=list)
    merged: list[Merge] = field(default_factory=list)
    height: int = 0
    width: int = 0


class ParsedBook:
    """The sheet listing of a reader that parses the whole file up front into `_sheets` (name → a sheet
    with `name` and `visible`)."""

    _sheets: dict[str, Any]

    def visible_sheets(self) -> list[str]:
        return [s.name for s in self._sheets.values() if s.visible]

    def sheet_names(self) -> list[str]:
        return list(self._sheets)


class OdsBook(ParsedBook):
    """A streaming content.xml reader: repeated rows and columns are counted, never materialised blank."""

    def __init__(self, path: Source, max_rows: int = 2_000, max_columns: int = 1_024) -> None:
        from defusedxml import ElementTree

        self._sheets: dict[str, _OdsSheet] = {}
        hidden_styles: set[str] = set()
        with zipfile.ZipFile(path) as archive, archive.open("content.xml") as stream:
            sheet: _OdsSheet | None = None
            row: list[Any] = []
            row_repeat = 1
            r = 0
            for event, element in ElementTree.iterparse(stream, events=("start", "end")):
                tag = element.tag
                if event == "start":
                    if tag == f"{{{_TABLE}}}table":
                        style = element.get(f"{{{_TABLE}}}style-name", "")
                        name = element.get(f"{{{_TABLE}}}name", f"Sheet{len(self._sheets) + 1}")
                        sheet = _OdsSheet(name=name, visible=style not in hidden_styles)
                        r = 0
                    elif tag == f"{{{_TABLE}}}table-row":
                        row = []
                        row_repeat = int(element.get(f"{{{_TABLE}}}number-rows-repeated", "1") or 1)
                    continue
                if tag == f"{{{_STYLE}}}style":
                    props = element.find(f"{{{_STYLE}}}table-properties")
                    if props is not None and props.get(f"{{{_TABLE}}}display") == "false":
                        hidden_styles.add(element.get(f"{{{_STYLE}}}name", ""))
                elif tag in (f"{{{_TABLE}}}table-cell", f"{{{_TABLE}}}covered-table-cell") and sheet is not None:
                    repeat = int(element.get(f"{{{_TABLE}}}number-columns-repeated", "1") or 1)
                    value = _ods_value(element) if tag.endswith("}table-cell") else ""
                    col_span = int(element.get(f"{{{_TABLE}}}number-columns-spanned", "1") or 1)
                    row_span = int(element.get(f"{{{_TABLE}}}number-rows-spanned", "1") or 1)
                    if (col_span > 1 or row_span > 1) and r < max_rows:
                        sheet.merged.append(((r, len(row)), (r + row_span - 1, len(row) + col_span - 1)))
                    if value == "" and repeat > 1:
                        row.extend([""] * min(repeat, max(0, max_columns + 1 - len(row))))
                    else:
                        row.extend([value] * min(repeat, max_columns + 1))
                    element.clear()
                elif tag == f"{{{_TABLE}}}table-row" and sheet is not None:
                    while row and row[-1] == "":
                        row.pop()
                    if row:
                        sheet.width = max(sheet.width, len(row))
                        for k in range(min(row_repeat, max(0, max_rows - r))):
                            while len(sheet.grid) < r + k:
                                sheet.grid.append([])
                            sheet.grid.append(list(row))
                        sheet.height = r + row_repeat
                    r += row_repeat
                    element.clear()
                elif tag == f"{{{_TABLE}}}table" and sheet is not None:
                    self._sheets[sheet.name] = sheet
                    sheet = None
                    element.clear()

    def grid(self, name: str, max_rows: int, max_cells: int, max_columns: int) -> tuple[Grid, list[Merge]]:
        sheet = self._sheets[name]
        if sheet.width > max_columns or sheet.height * sheet.width > max_cells:
            raise SheetTooLarge(sheet.height, sheet.width)
        return sheet.grid[:max_rows], sheet.merged


def _ods_value(cell: Any) -> Any:
    kind = cell.get(f"{{{_OFFICE}}}value-type")
    if kind in ("float", "percentage", "currency"):
        raw = cell.get(f"{{{_OFFICE}}}value", "")
        try:
            return float(raw)
        except ValueError:
            return raw
    if kind == "boolean":
        return cell.get(f"{{{_OFFICE}}}boolean-value") == "true"
    if kind == "date":
        return cell.get(f"{{{_OFFICE}}}date-value", "")
    if kind == "time":
        return cell.get(f"{{{_OFFICE}}}time-value", "")
    if kind is None and cell.get(f"{{{_TABLE}}}formula"):
        return FormulaWithoutValue(cell.get(f"{{{_TABLE}}}formula"))
    paragraphs = ["".join(p.itertext()) for p in cell.iter(f"{{{_TEXT}}}p")]
    return "\n".join(paragraphs) if kind == "string" or paragraphs else ""


class FormulaWithoutValue(str):
    """An ODS formula cell saved with no result; the reader reports it like the OOXML case."""


def open_workbook(path: Source, kind: str, data: bytes | None = None) -> Workbook:
    """calamine, or the format's own reader when calamine refuses the file. `data`, when given, is the
    file's content (decrypted, for a workbook that was), read instead of the file."""
    try:
        return CalamineBook(path, kind, data)
    except Exception:  # calamine raises CalamineError, XmlError, ZipError, ValueError…
        second = fallback_workbook(path, kind, data)
        if second is None:
            raise
        return second


def fallback_workbook(path: Source, kind: str, data: bytes | None = None) -> Workbook | None:
    """The second reader for a format, used when calamine opened the file but failed on a sheet."""
    if kind == "ods":
        return OdsBook(path)
    if kind == "xls":
        return XlrdBook(path, data)
    if kind == "xlsx":
        return OpenpyxlBook(path)
    return None

"""An xlsxwriter worksheet whose long body is turned into XML as it is written.

xlsxwriter keeps every cell as an object until the workbook closes and only then writes its XML:
about 7 µs a cell, which is most of the time a national-scale workbook takes (hundreds of thousands
of cells in "Số liệu đơn vị" and "Chỉ tiêu"). Those tables are written once, top to bottom, so their
XML can be built as they go, at a fraction of the cost. Cells above the row given to `stream_from`
(titles, headers) stay ordinary xlsxwriter cells with everything xlsxwriter offers.

Streamed cells are strings, numbers and formatted blanks, written in reading order (rows top to
bottom, columns left to right within a row); strings go to the workbook's shared string table as
xlsxwriter's own do. Hyperlinks and one-row merges work as usual (xlsxwriter writes them outside the
cell data); a streamed row's height must be set before its first cell; comments are not available.

The class leans on xlsxwriter internals, which carry no compatibility promise; pyproject.toml pins
xlsxwriter to the range tested with them, and every use goes through the "xlsxwriter internals"
section of the class (the names are listed in XLSXWRITER_INTERNALS and checked at import):

  overridden   Worksheet._write_string, _write_number, _write_blank (what the public write_* call),
               Worksheet._write_sheet_data, Worksheet._get_range_data
  called       Worksheet._write_rows, XMLwriter._xml_start_tag / _xml_end_tag, XMLwriter.fh,
               SharedStringTable._get_shared_string_index (via Worksheet.str_table), Format._get_xf_index
  attributes   Worksheet.dim_rowmin / dim_rowmax / dim_colmin / dim_colmax, xls_rowmax / xls_colmax
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

from xlsxwriter.format import Format
from xlsxwriter.sharedstrings import SharedStringTable
from xlsxwriter.worksheet import Worksheet

from pipeline.core.cells import column_letters

# (class, name) of every xlsxwriter internal used below; instance attributes are set by Worksheet().
XLSXWRITER_INTERNALS = (
    (Worksheet, "_write_string"), (Worksheet, "_write_number"), (Worksheet, "_write_blank"),
    (Worksheet, "_write_sheet_data"), (Worksheet, "_get_range_data"), (Worksheet, "_write_rows"),
    (Worksheet, "_xml_start_tag"), (Worksheet, "_xml_end_tag"),
    (SharedStringTable, "_get_shared_string_index"), (Format, "_get_xf_index"),
)
XLSXWRITER_ATTRIBUTES = ("dim_rowmin", "dim_rowmax", "dim_colmin", "dim_colmax", "xls_rowmax", "xls_colmax",
                         "str_table", "fh")


def missing_internals() -> list[str]:
    """The xlsxwriter internals this module needs and the installed xlsxwriter lacks (none, in the
    pinned range)."""
    missing = [f"{owner.__name__}.{name}" for owner, name in XLSXWRITER_INTERNALS if not hasattr(owner, name)]
    sheet = Worksheet()
    return missing + [f"Worksheet.{name}" for name in XLSXWRITER_ATTRIBUTES if not hasattr(sheet, name)]


if missing_internals():  # fail at import, with the reason, not with a broken workbook
    raise ImportError(f"pipeline.outputs.streamsheet needs xlsxwriter internals missing from this version: "
                      f"{', '.join(missing_internals())}; install the version pyproject.toml pins")

_MAX_STRING = 32_767  # UTF-16 code units Excel allows in a cell


def _utf16_length(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _truncate_utf16(text: str, limit: int) -> str:
    count = 0
    for index, ch in enumerate(text):
        count += 2 if ord(ch) > 0xFFFF else 1
        if count > limit:
            return text[:index]
    return text


def _number_text(number: Any) -> str:
    """As xlsxwriter writes a number: 16 significant digits, which is all a cell holds."""
    if type(number) is int and -10**15 < number < 10**15:
        return str(number)
    number = float(number)
    if math.isnan(number) or math.isinf(number):
        raise TypeError("NAN/INF not supported in write_number()")
    return f"{number:.16G}"


class StreamedWorksheet(Worksheet):
    """Pass as `worksheet_class` to `Workbook.add_worksheet`, then call `stream_from(row)`."""

    def __init__(self) -> None:
        super().__init__()
        self._stream_start: int | None = None
        self._parts: list[str] = []
        self._current_row = -1
        self._current_col = -1
        self._names: list[str] = []
        self._heights: dict[int, float] = {}
        self._styles: dict[int, str] = {}
        self._formats_seen: list[Any] = []

    def stream_from(self, row: int) -> None:
        """Cells from `row` down are streamed; everything above must already be written."""
        last = self._last_row()
        if last is not None and row <= last:
            raise ValueError(f"row {row} is not below the cells already written (last row {last})")
        self._stream_start = row

    def _streams(self, row: int) -> bool:
        return self._stream_start is not None and row >= self._stream_start

    def stream_row(self, row: int, col: int, cells: list[tuple[Any, Any]]) -> None:
        """Streamed cells of one row from column `col` on: (value, format) pairs, where a value is a str,
        an int or float, or None for a blank that only carries its format. The fast path for long tables;
        a row may be continued by further calls (or write_* calls) for columns to the right."""
        max_rows, max_cols = self._sheet_limits()
        if not self._streams(row) or row >= max_rows or col < 0 or col + len(cells) > max_cols:
            raise ValueError(f"row {row} is not a streamed row, or its cells do not fit the sheet")
        if row < self._current_row:
            raise ValueError(f"streamed rows go top to bottom: row {row} after row {self._current_row}")
        if row == self._current_row and col <= self._current_col:
            raise ValueError(f"streamed cells go left to right: column {col} after column {self._current_col}")
        number = row + 1
        parts: list[str] = []
        if row != self._current_row:  # else: more cells of the row under way
            if self._current_row >= 0:
                parts.append("</row>")
            parts.append(self._row_start(row))
        shared, styles = self._shared_string_index(), self._styles
        names = self._column_names(col + len(cells))
        for column, (value, cell_format) in enumerate(cells, start=col):
            style = styles.get(id(cell_format))
            if style is None:
                style = self._style(cell_format)
            # '<c r="B12" s="3"': the column's letters and the row's number around nothing else.
            start = f'<c r="{names[column]}{number}"{style}'
            if value is None:
                if cell_format is not None:
                    parts.append(start + "/>")
            elif value.__class__ is str:
                if len(value) > _MAX_STRING // 2 and _utf16_length(value) > _MAX_STRING:
                    value = _truncate_utf16(value, _MAX_STRING)
                parts.append(f'{start} t="s"><v>{shared(value)}</v></c>')
            elif value.__class__ is int and -10**15 < value < 10**15:
                parts.append(f"{start}><v>{value}</v></c>")
            elif isinstance(value, str):
                parts.append(f'{start} t="s"><v>{shared(str(value))}</v></c>')
            else:
                parts.append(f"{start}><v>{_number_text(value)}</v></c>")
        self._parts.append("".join(parts))
        self._current_row, self._current_col = row, col + len(cells) - 1
        self._extend_dimensions(row, (col, self._current_col) if cells else None)

    def set_row(self, row: int, height: float | None = None, cell_format: Any = None,
                options: dict | None = None) -> int:
        if not self._streams(row):
            return super().set_row(row, height, cell_format, options)
        if cell_format is not None or options or row <= self._current_row:
            raise ValueError("a streamed row takes only a height, set before its first cell")
        if height is not None:
            self._heights[row] = height
        return 0

    def _fits(self, row: int, col: int) -> bool:
        max_rows, max_cols = self._sheet_limits()
        return 0 <= row < max_rows and 0 <= col < max_cols

    def _row_start(self, row: int) -> str:
        height = self._heights.pop(row, None)
        if height is None:
            return f'<row r="{row + 1}">'
        return f'<row r="{row + 1}" ht="{height:g}" customHeight="1">'

    def _column_names(self, end: int) -> list[str]:
        """Letters of columns 0 … end - 1 (A, B, …), computed once per sheet."""
        names = self._names
        while len(names) < end:
            names.append(column_letters(len(names)))
        return names

    def _style(self, cell_format: Any) -> str:
        """The cell's s="…" attribute; looked up once per format (formats live as long as the workbook)."""
        style = self._styles.get(id(cell_format))
        if style is None:
            index = self._xf_index(cell_format) if cell_format is not None else 0
            style = self._styles[id(cell_format)] = f' s="{index}"' if index else ""
            self._formats_seen.append(cell_format)  # keeps id() unique while it is a key
        return style

    # ------------------------------------------------------------ xlsxwriter internals
    # Everything below touches names xlsxwriter does not document (see the module docstring and
    # XLSXWRITER_INTERNALS); the methods above use only these.

    # Worksheet() sets these: the extent of the cells written so far, None until there is one.
    # (Annotations only, for the type checker: xlsxwriter has no type information.)
    dim_rowmin: int | None
    dim_rowmax: int | None
    dim_colmin: int | None
    dim_colmax: int | None

    # Overridden: xlsxwriter's public write_* methods convert their arguments and then call these.

    def _write_string(self, row: int, col: int, string: str, cell_format: Any = None) -> int:
        if not self._streams(row):
            return super()._write_string(row, col, string, cell_format)
        if not self._fits(row, col):
            return -1
        self.stream_row(row, col, [(string, cell_format)])
        return -2 if len(string) > _MAX_STRING // 2 and _utf16_length(string) > _MAX_STRING else 0

    def _write_number(self, row: int, col: int, number: Any, cell_format: Any = None) -> int:
        if not self._streams(row):
            return super()._write_number(row, col, number, cell_format)
        if not isinstance(number, numbers.Real):
            raise TypeError(f"write_number() needs a number, not {type(number).__name__}")
        if not self._fits(row, col):
            return -1
        self.stream_row(row, col, [(number, cell_format)])
        return 0

    def _write_blank(self, row: int, col: int, blank: Any, cell_format: Any = None) -> int:
        if not self._streams(row):
            return super()._write_blank(row, col, blank, cell_format)
        if cell_format is None:
            return 0
        if not self._fits(row, col):
            return -1
        self.stream_row(row, col, [(None, cell_format)])
        return 0

    def _write_sheet_data(self) -> None:
        if not self._parts:
            super()._write_sheet_data()
            return
        self._xml_start_tag("sheetData")
        last_streamed = self.dim_rowmax
        # Streamed parts exist, so stream_from set the start and stream_row the extent.
        assert self._stream_start is not None and self.dim_rowmin is not None
        if self.dim_rowmin < self._stream_start:
            # xlsxwriter's own rows, above the streamed ones.
            self.dim_rowmax = self._stream_start - 1
            self._write_rows()
            self.dim_rowmax = last_streamed
        # Handed over piece by piece and then dropped: the sheet's XML is held once, by the writer.
        parts, self._parts = self._parts, []
        for part in parts:
            self.fh.write(part)
        del parts
        self.fh.write("</row>")
        self._xml_end_tag("sheetData")

    def _get_range_data(self, row_start: int, col_start: int, row_end: int, col_end: int) -> Any:
        # Streamed values are not kept: a chart drawn from them carries no cached copy, and Excel and
        # LibreOffice read the cells themselves, as they do for xlsxwriter's constant_memory mode.
        if self._streams(row_end):
            return ()
        return super()._get_range_data(row_start, col_start, row_end, col_end)

    # Used: the sheet's extent and limits, the workbook's shared strings, a format's style index.

    def _last_row(self) -> int | None:
        return self.dim_rowmax

    def _sheet_limits(self) -> tuple[int, int]:
        return self.xls_rowmax, self.xls_colmax

    def _extend_dimensions(self, row: int, columns: tuple[int, int] | None) -> None:
        if self.dim_rowmin is None:
            self.dim_rowmin = row
        self.dim_rowmax = row
        if columns is None:
            return
        first_col, last_col = columns
        if self.dim_colmin is None or first_col < self.dim_colmin:
            self.dim_colmin = first_col
        if self.dim_colmax is None or last_col > self.dim_colmax:
            self.dim_colmax = last_col

    def _shared_string_index(self) -> Callable[[str], int]:
        """text → its index in the workbook's shared string table (added when new)."""
        return self.str_table._get_shared_string_index

    @staticmethod
    def _xf_index(cell_format: Any) -> int:
        return cell_format._get_xf_index()

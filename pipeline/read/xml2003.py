"""Excel 2003 XML Spreadsheet (SpreadsheetML 2003) files, read behind the same interface as the others.

One `<Workbook>` document: `<Worksheet ss:Name>` / `<Table>` / `<Row>` / `<Cell>` / `<Data ss:Type>`.
Rows and cells carry a position only when they do not follow the previous one (`ss:Index`, 1-based);
a cell with `ss:MergeAcross` / `ss:MergeDown` spans the cells to its right and below, and those are
not written at all. The document is parsed in one streaming pass by defusedxml's parser driving a
small target (no element tree is built, a DTD or entity declaration raises), and only cells holding
a value are kept, sparsely: a cell far to the right is counted, never padded out to.

Values are given as python-calamine gives the same cell of an .xlsx: every Number a float, a
DateTime a datetime (a date when there is no time of day, a time when there is no date), a Boolean a
bool, an Error cell "", a formula its cached value (FormulaWithoutValue when it has none, as the ODS
reader reports it).

LibreOffice (and OpenOffice.org before it) export this format through an XSLT that numbers `ss:Index`
wrongly after a vertical merge: it leaves out the positions covered by merges from the rows above.
Its files are recognised and read by that numbering; see `_written_by_openoffice`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from pipeline.read.fallback import FormulaWithoutValue, Grid, Merge, ParsedBook, SheetTooLarge

SPREADSHEET_NS = "urn:schemas-microsoft-com:office:spreadsheet"
_EXCEL_NS = "urn:schemas-microsoft-com:office:excel"
_SS = "{" + SPREADSHEET_NS + "}"
_X = "{" + _EXCEL_NS + "}"

_WORKBOOK, _WORKSHEET, _ROW, _CELL, _DATA = (_SS + n for n in ("Workbook", "Worksheet", "Row", "Cell", "Data"))
_OPTIONS, _VISIBLE = _X + "WorksheetOptions", _X + "Visible"
_NAME, _INDEX, _TYPE = (_SS + n for n in ("Name", "Index", "Type"))
_HIDDEN = {"SheetHidden", "SheetVeryHidden"}
# The Cell attributes read, by their full name and (as some generators write them) without the prefix.
_CELL_ATTRIBUTES = {key: name for name in ("Index", "MergeAcross", "MergeDown", "Formula")
                    for key in (_SS + name, name)}

_SNIFF = 4096
_XML_START = b"< \t\r\n"
_CHUNK = 1 << 20
# Vertical merges followed at once for cell positions: a form has a handful, and beyond this many a
# crafted sheet would make every row pay for all of them (the merges are still reported).
_MAX_TRACKED_MERGES = 1_024
_EXCEL_DAY_ZERO = (date(1899, 12, 30), date(1899, 12, 31))  # what a time of day without a date is written as


def looks_like_xml2003(head: bytes) -> bool:
    """Whether a file's first bytes are an Excel 2003 XML workbook: `<?xml` first (after a byte order
    mark and white space), then the spreadsheet namespace within the first 4 KiB. UTF-8 or UTF-16."""
    head = head[:_SNIFF]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head[2:].decode("utf-16-le" if head[0] == 0xFF else "utf-16-be", "ignore")
    elif len(head) > 1 and head[1] == 0 and head[0] in _XML_START:  # UTF-16 without a mark, either order
        text = head.decode("utf-16-le", "ignore")
    elif len(head) > 1 and head[0] == 0 and head[1] in _XML_START:
        text = head.decode("utf-16-be", "ignore")
    else:
        text = head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "ignore")
    text = text.lstrip(" \t\r\n\ufeff")
    return text.startswith("<?xml") and SPREADSHEET_NS in text


@dataclass
class _Sheet:
    name: str
    visible: bool = True
    cells: dict[int, dict[int, Any]] = field(default_factory=dict)  # row → column → value, values only
    merged: list[Merge] = field(default_factory=list)
    height: int = 0  # last row holding a value, plus one (0-based positions, as the grid has them)
    width: int = 0


class Xml2003Book(ParsedBook):
    """A parsed SpreadsheetML 2003 workbook. `max_rows` rows and `max_columns` columns of each sheet are
    kept; values beyond are counted (a sheet's height and width), not kept, and `grid` refuses a sheet
    wider than `max_columns`."""

    def __init__(self, data: bytes, max_rows: int = 2_000, max_columns: int = 1_024) -> None:
        from defusedxml.ElementTree import DefusedXMLParser

        self._max_rows, self._max_columns = max_rows, max_columns
        target = _Reader(max_rows, max_columns, _written_by_openoffice(data))
        parser = DefusedXMLParser(target=target, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        for start in range(0, len(data), _CHUNK):
            parser.feed(data[start:start + _CHUNK])
        parser.close()
        if not target.root_seen:
            raise ValueError("not an Excel 2003 XML workbook: the document has no Workbook element")
        self._sheets = target.sheets

    def grid(self, name: str, max_rows: int, max_cells: int, max_columns: int) -> tuple[Grid, list[Merge]]:
        sheet = self._sheets[name]
        height, width = sheet.height, sheet.width
        if width > max_columns or width > self._max_columns or height * width > max_cells:
            raise SheetTooLarge(height, width)
        grid: Grid = []
        for r in range(min(height, max_rows, self._max_rows)):
            line: list[Any] = [""] * width
            for c, value in sheet.cells.get(r, {}).items():
                line[c] = value
            grid.append(line)
        return grid, list(sheet.merged)


def _written_by_openoffice(data: bytes) -> bool:
    """Whether the file is LibreOffice's or OpenOffice.org's export (their XSLT writes prefixed
    `<ss:Worksheet>` elements under a root declaring the Office Web Components namespace as `c`;
    Excel writes `<Worksheet>`). Such a file numbers `ss:Index` leaving out the positions that merges
    from the rows above cover: in a row under a 2-row merge at A, `ss:Index="2"` is column C."""
    return (b'xmlns:c="urn:schemas-microsoft-com:office:component:spreadsheet"' in data[:_SNIFF]
            and b"<ss:Worksheet " in data)


class _Reader:
    """The parser's target: builds the sheets from start/end/data callbacks, keeping no elements."""

    def __init__(self, max_rows: int, max_columns: int, compressed_index: bool) -> None:
        self.max_rows, self.max_columns = max_rows, max_columns
        self.compressed_index = compressed_index
        self.sheets: dict[str, _Sheet] = {}
        self.root_seen = False
        self.depth = 0
        self.sheet: _Sheet | None = None
        self.sheet_count = 0
        self.row = -1  # 0-based index of the current (or last) row of the sheet
        self.in_row = False
        self.cell_depth = -1  # depth of the open Cell element; -1 outside one
        self.column = 0  # 0-based position of the open cell, or of the next one when none is open
        self.across = self.down = 0
        self.formula: str | None = None
        self.data_depth = -1  # depth of the open Data element directly under the Cell
        self.data_type = ""
        self.texts: list[str] | None = None  # text of the open Data element (or Visible element)
        self.value: Any = ""
        self.in_options = False
        self.visible_texts: list[str] | None = None
        # vertical merges: (first row, last row, first column, last column), 0-based
        self.down_merges: list[tuple[int, int, int, int]] = []
        self.covered: list[tuple[int, int]] = []  # columns of the current row covered from above, merged
        self.free_cursor = 0  # covered[:free_cursor] lie wholly left of the last position looked up
        self.last_free = -1
        self.index_cursor = 0  # for the compressed numbering: intervals passed, and their total width
        self.index_shift = 0
        self.last_index = -1

    # ------------------------------------------------------------------ parser callbacks

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.depth += 1
        if not self.root_seen:
            if tag != _WORKBOOK:
                raise ValueError(f"not an Excel 2003 XML workbook: the root element is {tag}")
            self.root_seen = True
            return
        if self.cell_depth >= 0:
            if tag == _DATA and self.depth == self.cell_depth + 1 and self.data_depth == -1:
                self.data_depth = self.depth
                self.data_type = (_attribute(attrib, _TYPE) or "String").strip().lower()
                self.texts = []
            return  # Data's rich text children (html Font, B…), a Comment, NamedCell…
        if tag == _CELL:
            if self.in_row:
                self._open_cell(attrib)
        elif tag == _ROW:
            if self.sheet is not None:
                self._open_row(attrib)
        elif tag == _WORKSHEET:
            self.sheet_count += 1
            name = _attribute(attrib, _NAME) or f"Sheet{self.sheet_count}"
            self.sheet = _Sheet(name=name)
            self.row = -1
            self.down_merges = []
        elif tag == _OPTIONS:
            self.in_options = self.sheet is not None
        elif tag == _VISIBLE and self.in_options:
            self.visible_texts = []

    def data(self, text: str) -> None:
        if self.texts is not None:
            self.texts.append(text)
        elif self.visible_texts is not None:
            self.visible_texts.append(text)

    def end(self, tag: str) -> None:
        depth = self.depth
        self.depth -= 1
        if self.cell_depth >= 0:
            if depth == self.data_depth:
                self.value = _value(self.data_type, "".join(self.texts or ()))
                self.texts = None
                self.data_depth = -2  # a second Data in the same cell is not the value
            elif depth == self.cell_depth:
                self._close_cell()
            return
        if tag == _ROW:
            self.in_row = False
        elif tag == _VISIBLE and self.visible_texts is not None:
            if self.sheet is not None and "".join(self.visible_texts).strip() in _HIDDEN:
                self.sheet.visible = False
            self.visible_texts = None
        elif tag == _OPTIONS:
            self.in_options = False
        elif tag == _WORKSHEET and self.sheet is not None:
            self.sheets.setdefault(self.sheet.name, self.sheet)  # a repeated name: the first sheet stands
            self.sheet = None

    def close(self) -> None:
        return None

    # ------------------------------------------------------------------ rows and cells

    def _open_row(self, attrib: dict[str, str]) -> None:
        index = attrib.get(_INDEX) or attrib.get("Index") if attrib else None
        self.row = _position(index) if index else self.row + 1
        self.in_row = True
        self.column = 0
        self._cover_row()

    def _open_cell(self, attrib: dict[str, str]) -> None:
        # Most cells carry one attribute or none (a style); look only at those present.
        found = {_CELL_ATTRIBUTES[key]: value for key, value in attrib.items() if key in _CELL_ATTRIBUTES}
        index = found.get("Index")
        if index:
            k = _position(index)
            column = self._uncompress(k) if self.compressed_index else k
        else:
            column = self._next_free(self.column)
        self.column = column
        self.across = _span(found.get("MergeAcross"))
        self.down = _span(found.get("MergeDown"))
        self.formula = found.get("Formula")
        self.cell_depth = self.depth
        self.data_depth = -1
        self.value = ""

    def _close_cell(self) -> None:
        sheet, r, c = self.sheet, self.row, self.column
        assert sheet is not None
        value = self.value
        if value == "" and self.data_depth == -1 and self.formula:
            value = FormulaWithoutValue(self.formula)  # a formula saved without its result
        # An error cell reads "" but, as in calamine's reading of an .xlsx, still reaches to where it is.
        if value != "" or (self.data_depth == -2 and self.data_type == "error"):
            sheet.height = max(sheet.height, r + 1)
            sheet.width = max(sheet.width, c + 1)
            if r < self.max_rows and c < self.max_columns and value != "":
                sheet.cells.setdefault(r, {})[c] = value
        if (self.across or self.down) and r < self.max_rows:
            sheet.merged.append(((r, c), (r + self.down, c + self.across)))
            if self.down and c < self.max_columns and len(self.down_merges) < _MAX_TRACKED_MERGES:
                self.down_merges.append((r, r + self.down, c, c + self.across))
        self.column = c + 1 + self.across
        self.cell_depth = -1
        self.texts = None

    # ------------------------------------------------------------------ positions covered from above

    def _cover_row(self) -> None:
        """The columns of the new row that merges starting in rows above cover, as sorted, disjoint
        intervals. Only the kept rows are followed: below them positions only count the sheet's size."""
        r = self.row
        covered: list[tuple[int, int]] = []
        if self.down_merges and r < self.max_rows:
            self.down_merges = [m for m in self.down_merges if m[1] >= r]
            covered = sorted((c0, c1) for first, _, c0, c1 in self.down_merges if first < r)
            joined: list[tuple[int, int]] = []
            for c0, c1 in covered:
                if joined and c0 <= joined[-1][1] + 1:
                    joined[-1] = (joined[-1][0], max(joined[-1][1], c1))
                else:
                    joined.append((c0, c1))
            covered = joined
        self.covered = covered
        self.free_cursor = self.index_cursor = self.index_shift = 0
        self.last_free = self.last_index = -1

    def _next_free(self, column: int) -> int:
        """`column`, or the first position right of it that no merge from above covers. Excel writes an
        explicit ss:Index past such positions; LibreOffice relies on the reader skipping them."""
        covered = self.covered
        if not covered or column >= self.max_columns:
            return column
        if column < self.last_free:
            self.free_cursor = 0  # positions going back (not valid SpreadsheetML): look from the start
        self.last_free = column
        i = self.free_cursor
        while i < len(covered) and covered[i][1] < column:
            i += 1
        if i < len(covered) and covered[i][0] <= column:
            column = covered[i][1] + 1  # intervals are disjoint and not adjacent: the next one starts later
            i += 1
        self.free_cursor = i
        self.last_free = column
        return column

    def _uncompress(self, k: int) -> int:
        """The position of the (k+1)-th column not covered from above (LibreOffice's ss:Index)."""
        covered = self.covered
        if not covered:
            return k
        if k < self.last_index:
            self.index_cursor = self.index_shift = 0
        self.last_index = k
        i, shift = self.index_cursor, self.index_shift
        column = k + shift
        while i < len(covered) and covered[i][0] <= column:
            width = covered[i][1] - covered[i][0] + 1
            shift += width
            column += width
            i += 1
        self.index_cursor, self.index_shift = i, shift
        return column


def _attribute(attrib: dict[str, str], name: str) -> str | None:
    """An ss: attribute; some generators leave the prefix out."""
    value = attrib.get(name)
    if value is None:
        value = attrib.get(name[len(_SS):])
    return value


def _position(text: str) -> int:
    """A 1-based ss:Index as a 0-based position."""
    number = int(text.strip())
    if number < 1:
        raise ValueError(f"ss:Index {number} is not a position")
    return number - 1


def _span(text: str | None) -> int:
    if not text:
        return 0
    number = int(text.strip())
    if number < 0:
        raise ValueError(f"merge span {number} is negative")
    return number


def _value(kind: str, text: str) -> Any:
    if kind == "string":
        return text
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            return text.strip()
        return number if math.isfinite(number) else text.strip()  # Excel never writes inf or nan
    if kind == "boolean":
        word = text.strip().lower()
        if word in ("1", "true"):
            return True
        if word in ("0", "false"):
            return False
        return text
    if kind == "datetime":
        return _datetime(text)
    if kind == "error":
        return ""  # as python-calamine gives an error cell of an .xlsx
    return text


def _datetime(text: str) -> Any:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return text
    if moment.tzinfo is not None:
        moment = moment.replace(tzinfo=None)
    if moment.date() in _EXCEL_DAY_ZERO:
        return moment.time()
    if moment.time() == time(0, 0):
        return moment.date()
    return moment

"""Open any spreadsheet, find the form on its visible sheets, and return raw cells with addresses.

Runs inside the isolated reader workers (see `isolation`), so it imports nothing heavy: only
python-calamine for the grid and the standard library for the few OOXML details calamine hides
(formula text of cells that have no cached value, and sheet part names).
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePath
from typing import Any

from pipeline.core.cells import address, column_letters, column_number
from pipeline.core.legacy import convert_grid, encoding_of_font, to_unicode
from pipeline.core.legacy import detect as legacy_detect
from pipeline.core.form import FormDefinition
from pipeline.core.issues import Issue, make_issue
from pipeline.read.screen import DEFAULT_LIMITS, Limits, Screened, read_failure, read_inbox_file, screen
from pipeline.read.word import WordBook, convert_with_libreoffice, libreoffice_available
from pipeline.read.xml2003 import Xml2003Book
from pipeline.read.fallback import FormulaWithoutValue, SheetTooLarge, fallback_workbook, open_workbook
from pipeline.core.textnorm import fold
from pipeline.core.token import TOKEN_SHEET, Token, parse_token

MAX_SCAN_ROWS = 2_000  # the form sits near the top; nothing below this is ever the table
MAX_HEADER_ROWS = 4
MAX_TABLE_ROWS = 200
MAX_BLANK_RUN = 15


@dataclass(slots=True)
class RawCell:
    address: str
    value: Any  # int | float | str | bool | date | None, as the program stored it
    formula_state: str = ""  # "", "no_value" or "error:<code>" for an OOXML formula without a number


@dataclass(slots=True)
class RawRow:
    row: int  # 1-based, as Excel shows it
    label: str
    label_cell: str
    year: int | None  # None for the total row
    cells: dict[str, RawCell] = field(default_factory=dict)


@dataclass(slots=True)
class RawForm:
    sheet: str
    header_row: int
    year_column: str
    columns: dict[str, str]  # metric key → column letters
    unit_line: str
    unit_line_cell: str
    rows: list[RawRow]  # one per year row found, in sheet order (duplicates included)
    total_row: RawRow | None
    ignored_rows: list[int] = field(default_factory=list)  # rows with numbers but no year label
    grid: list[list[Any]] = field(default_factory=list)  # the sheet as received, for feedback copies


@dataclass(slots=True)
class FoundForm:
    """One copy of the form found in a file, with the issues of its structure."""

    form: RawForm
    issues: list[Issue] = field(default_factory=list)


@dataclass(slots=True)
class ReadResult:
    format: str  # xlsx | xls | ods | xlsb | xml2003 | docx | odt | doc | rtf | pdf | image, or "rejected"
    found: list[FoundForm] = field(default_factory=list)  # every sheet or table holding the form, in order
    issues: list[Issue] = field(default_factory=list)  # the file's own (not of one copy of the form)
    sheets: tuple[str, ...] = ()  # visible sheet names (tables "Bảng 1"… of a document)
    token: Token | None = None  # the unit token of a copy handed out by the province

    @property
    def form(self) -> RawForm | None:
        """The first copy of the form found; None when there is none."""
        return self.found[0].form if self.found else None

    @property
    def rejected(self) -> bool:
        return any(issue.severity == "error" for issue in self.issues)


def read_submission(path: PurePath | str, form: FormDefinition, limits: Limits = DEFAULT_LIMITS,
                    raw: bytes | None = None, screened: Screened | None = None) -> ReadResult:
    """Screen the file, open it, and locate every copy of the form in it. Never raises for anything the
    file contains.

    `raw`, when given, is the file's content already read by the caller (screen.read_inbox_file, or a
    container's member); otherwise it is read here, once. Either way no reader below opens the file
    again: every one of them works on these bytes, so what is judged is what was read and hashed.
    `screened`, when given, is what `screen` already said of these bytes. Containers (zip, mail) are
    the caller's to open (pipeline.read.isolated): here they are one more kind this reader cannot read.
    """
    path = path if isinstance(path, PurePath) else PurePath(path)
    if raw is None:
        try:
            raw = read_inbox_file(Path(path), limits)
        except OSError as exc:
            return ReadResult(format="rejected", issues=[read_failure(exc, limits)])
    screened = screened or screen(path, limits, raw)
    if screened.issue is not None:
        return ReadResult(format="rejected", issues=[screened.issue])
    kind = screened.kind
    if kind in ("pdf", "image"):
        return ReadResult(format=kind)  # a scan or photo: the run records it as the unit's signed copy
    try:
        data = screened.decrypted if screened.decrypted is not None else raw
        if kind in ("doc", "rtf"):
            return _read_converted(kind, data, path, form, limits)
        book = _open_book(kind, data)
        return _read_book(book, kind, data, screened.oversized_sheets, form, limits)
    except MemoryError:
        return ReadResult(format="rejected", issues=[make_issue("reader_out_of_memory")])
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # calamine raises its own errors, and pyo3 panics derive from BaseException
        return ReadResult(format="rejected", issues=[make_issue("file_unreadable", detail=_describe(exc))])


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def _in_memory(data: bytes) -> io.BytesIO:
    """The file's bytes where a reader of sheets.py takes a path: the fallback readers (openpyxl, the ODS
    reader) would otherwise open the inbox entry again."""
    return io.BytesIO(data)


def _open_book(kind: str, data: bytes) -> Any:
    if kind in ("docx", "odt"):
        return WordBook(data, kind)
    if kind == "xml2003":
        return Xml2003Book(data)
    return open_workbook(_in_memory(data), kind, data)


def _read_converted(kind: str, data: bytes, path: PurePath, form: FormDefinition, limits: Limits) -> ReadResult:
    """A legacy Word document (.doc, .rtf): converted to .docx by LibreOffice, where it is installed."""
    extension = path.suffix or f".{kind}"
    if not libreoffice_available():
        return ReadResult(format="rejected", issues=[make_issue("document_needs_converter", extension=extension)])
    # Well inside the reader's own deadline, so the conversion is stopped before its worker is.
    converted = convert_with_libreoffice(data, f".{kind}", "docx", timeout=min(20.0, limits.convert_seconds))
    if converted is None:
        return ReadResult(format="rejected", issues=[make_issue("document_unconvertible", extension=extension)])
    result = _read_book(WordBook(converted, "docx"), "docx", converted, (), form, limits)
    result.format = kind
    return result


def _read_book(book: Any, kind: str, data: bytes, oversized: tuple[str, ...],
               form: FormDefinition, limits: Limits) -> ReadResult:
    # Sheet part names cost an XML parse; only oversized sheets and blank data cells need them.
    needs_parts = kind == "xlsx"
    sheet_parts: dict[str, str] = _ooxml_sheet_parts(data) if needs_parts and oversized else {}
    visible = book.visible_sheets()
    token = _read_token(book, limits)
    issues: list[Issue] = []
    found: list[FoundForm] = []
    partial: tuple[str, dict[str, str], int] | None = None
    skipped: list[Issue] = []
    legacy: set[str] = set()
    declared_fonts: set[tuple[str, bool]] | None = None  # read from the file only when needed
    for name in visible:
        if sheet_parts.get(name) in oversized:
            skipped.append(make_issue("sheet_too_large", sheet=name, extent="quá nhiều hàng/cột"))
            continue
        try:
            grid, merged = _sheet_grid(book, kind, data, name, limits)
        except SheetTooLarge as too_large:
            skipped.append(make_issue("sheet_too_large", sheet=name,
                                      extent=f"{too_large.height} hàng × {too_large.width} cột"))
            continue
        encoding: str | None = None
        located = locate_form(grid, merged, form, name)
        if isinstance(located, RawForm):
            # The form's labels read as they are (nearly every file): only its unit line may be legacy text.
            line = located.unit_line
            suspect = not line.isascii() and _NOT_VIETNAMESE_LATIN1.search(line)
            line_encoding = legacy_detect([line]) if suspect else None
            if line_encoding is not None:
                located.unit_line = to_unicode(located.unit_line, line_encoding)
                legacy.add(line_encoding)
        else:
            texts = _legacy_candidates(grid)
            encoding = legacy_detect(texts) if texts else None
            uppercase = False
            if encoding is not None or _maybe_legacy(texts):
                # The characters alone may not be conclusive (a few words): a legacy font the file declares
                # is. And text typed in .VnTimeH shows in capitals: only the fonts say so.
                if declared_fonts is None:
                    declared_fonts = _legacy_fonts(kind, data)
                encodings = {e for e, _ in declared_fonts}
                if encoding is None and len(encodings) == 1:
                    encoding = next(iter(encodings))
                uppercase = bool(declared_fonts) and all(u for e, u in declared_fonts if e == encoding) and \
                    any(e == encoding for e, _ in declared_fonts)
            if encoding is not None:
                grid = convert_grid(grid, encoding, uppercase)
                located = locate_form(grid, merged, form, name)
            if located is None:
                located = _locate_transposed(grid, merged, form, name)
        if located is None:
            continue
        if isinstance(located, tuple):
            partial = partial or located
            continue
        if encoding is not None:
            legacy.add(encoding)
        if not located.unit_line and hasattr(book, "preamble"):
            located.unit_line, located.unit_line_cell = _unit_line_above(book.preamble(name), encoding, form), ""
        if needs_parts and any(cell.value is None for row in located.rows for cell in row.cells.values()):
            sheet_parts = sheet_parts or _ooxml_sheet_parts(data)
            _mark_formulas(data, sheet_parts.get(name, ""), located)
        found.append(FoundForm(located, structure_issues(located, form)))
    if len(found) > 1:
        found = _with_numbers(found)
    issues.extend(make_issue("legacy_font", encoding=LEGACY_NAMES.get(e, e)) for e in sorted(legacy))
    if found:
        return ReadResult(format=kind, found=found, issues=issues, sheets=tuple(visible), token=token)
    if partial is not None:
        sheet_name, columns, header_row = partial
        missing = [m for m in form.metrics if m.key not in columns]
        issues.extend(make_issue("column_missing", label=m.label, sheet=sheet_name,
                                 cell=f"A{header_row}") for m in missing)
        return ReadResult(format=kind, issues=issues, sheets=tuple(visible), token=token)
    if skipped:
        return ReadResult(format=kind, issues=skipped, sheets=tuple(visible), token=token)
    return ReadResult(format=kind, issues=[make_issue("form_not_found")], sheets=tuple(visible), token=token)


LEGACY_NAMES = {"tcvn3": "TCVN3 (.VnTime)", "vni": "VNI (VNI-Times)"}


def _unit_line_above(paragraphs: list[str], encoding: str | None, form: FormDefinition) -> str:
    """A Word table's unit line: a paragraph above the table (nearest last). The plan the form travels in
    has its own "BCH ĐOÀN TỈNH …" heading on its first page, so only what follows the last province line
    counts."""
    encoding = encoding or legacy_detect(paragraphs)
    if encoding is not None:
        paragraphs = [to_unicode(p, encoding) for p in paragraphs]
    last = max((i for i, p in enumerate(paragraphs) for line in _lines(p)
                if fold(line).startswith(form.province_line)), default=0)
    rows = [[p] for p in paragraphs[last:]]
    return find_unit_line(rows, len(rows), form)[0]


_FONT_NAMES = re.compile(rb'<(?:\w+:)?(?:name|rFont) val="([^"]{1,64})"|(?:svg:font-family|style:name|fo:font-family)='
                         rb'"([^"]{1,64})"')


def _legacy_fonts(kind: str, data: bytes) -> set[tuple[str, bool]]:
    """The legacy encodings the fonts a workbook declares stand for: {("tcvn3", uppercase)…}. Only the
    styles and shared strings of OOXML, and the font faces of ODS, are looked at; .xls tells nothing here."""
    parts = {"xlsx": ("xl/styles.xml", "xl/sharedStrings.xml"), "ods": ("styles.xml", "content.xml")}.get(kind, ())
    found: set[tuple[str, bool]] = set()
    if not parts:
        return found
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            for part in parts:
                if part in names:
                    with archive.open(part) as stream:
                        text = stream.read(8 * 1024 * 1024)  # screened already; a bound all the same
                    for match in _FONT_NAMES.finditer(text):
                        font = (match.group(1) or match.group(2) or b"").decode("utf-8", "replace")
                        legacy = encoding_of_font(font)
                        if legacy is not None:
                            found.add(legacy)
    except (zipfile.BadZipFile, OSError, KeyError):
        return set()
    return found


_VIETNAMESE_BEYOND_LATIN1 = re.compile("[\u0102\u0103\u0110\u0111\u0128\u0129\u0168\u0169\u01a0\u01a1"
                                       "\u01af\u01b0\u1ea0-\u1ef9]")


def _maybe_legacy(texts: list[str]) -> bool:
    """Latin-1 letters beyond ASCII and no Vietnamese letter outside Latin-1 (ă đ ơ ư ậ…): what legacy
    text looks like, and Unicode Vietnamese never does."""
    joined = "".join(t for t in texts if not t.isascii())
    return bool(joined) and _VIETNAMESE_BEYOND_LATIN1.search(joined) is None


# Characters of Latin-1 that Vietnamese text never holds (all but its letters à á â ã è é ê ì í ò ó ô õ ù ú ý):
# legacy text always has some (TCVN3's µ § ¸ ¬ …, VNI's ø ï ñ û …). A sheet without any is not looked at further.
_NOT_VIETNAMESE_LATIN1 = re.compile("[\u0080-\u00bf\u00c4-\u00c7\u00cb\u00ce-\u00d1\u00d6-\u00d8\u00db"
                                    "\u00dc\u00de-\u00df\u00e4-\u00e7\u00eb\u00ee-\u00f1\u00f6-\u00f8"
                                    "\u00fb\u00fc\u00fe\u00ff]")


def _legacy_candidates(grid: list[list[Any]]) -> list[str]:
    """The sheet's texts beyond ASCII when one of them may be legacy text; [] otherwise (nearly every
    sheet: the check costs a scan of its text cells, not a judgement of every word)."""
    texts = [value for row in grid[:MAX_SCAN_ROWS] for value in row
             if type(value) is str and value and not value.isascii()]
    if texts and _NOT_VIETNAMESE_LATIN1.search("".join(texts)):
        return texts
    return []


def _with_numbers(found: list[FoundForm]) -> list[FoundForm]:
    """Every copy of the form is a submission, except blank ones beside a filled one (the template a
    unit left in its workbook after filling a copy)."""
    filled = [f for f in found if any(c.value not in (None, "") for row in f.form.rows for c in row.cells.values())]
    return filled if filled else found[:1]


def _locate_transposed(grid: list[list[Any]], merged: list, form: FormDefinition, name: str) -> RawForm | None:
    """The form with years across and metrics down (every row and column labelled): located on the
    transposed grid, then every address put back where it is on the sheet. Only a sheet with two of the
    form's years side by side in a row is worth turning (an instruction sheet is not)."""
    rows = grid[:MAX_SCAN_ROWS]
    years = set(form.years)
    if not any(sum(1 for value in row if value != "" and (type(value) is not str or len(value) <= 12)
                   and year_of(value) in years) >= 2 for row in rows):
        return None
    width = max((len(row) for row in rows), default=0)
    flipped = [[row[c] if c < len(row) else "" for row in rows] for c in range(width)]
    flipped_merges = [((c0, r0), (c1, r1)) for (r0, c0), (r1, c1) in merged]
    located = locate_form(flipped, flipped_merges, form, name)
    if not isinstance(located, RawForm):
        return None
    for row in located.rows + ([located.total_row] if located.total_row else []):
        row.label_cell = _flip_address(row.label_cell)
        for cell in row.cells.values():
            cell.address = _flip_address(cell.address)
        row.row = 0  # years run across: a year is a column here, not a row
    # The year header sits at (header_row, year_column) of the flipped grid: (that column, that row) here.
    header_r, header_c = column_number(located.year_column) - 1, located.header_row - 1
    located.unit_line, located.unit_line_cell = find_unit_line(grid, header_r, form)
    located.header_row, located.year_column = header_r + 1, column_letters(header_c)
    located.columns = {}
    located.ignored_rows = []
    located.grid = [row[:SNAPSHOT_COLUMNS] for row in grid[:located.header_row + 40]]
    return located


def _flip_address(text: str) -> str:
    match = re.fullmatch(r"([A-Z]+)(\d+)", text)
    if not match:
        return text
    return address(column_number(match.group(1)) - 1, int(match.group(2)) - 1)


def _read_token(book, limits: Limits) -> Token | None:
    for name in book.sheet_names():
        if name.strip().lower() == TOKEN_SHEET:
            try:
                grid, _ = book.grid(name, 10, 100, 10)
            except Exception:  # an unreadable token is no token; names decide
                return None
            return parse_token(grid)
    return None


def _sheet_grid(book, kind: str, data: bytes, name: str,
                limits: Limits) -> tuple[list[list[Any]], list]:
    args = (MAX_SCAN_ROWS, limits.max_cells, limits.max_columns)
    try:
        return book.grid(name, *args)
    except SheetTooLarge:
        raise
    except Exception:  # calamine opened the book but not this sheet: let the format's own reader try
        second = fallback_workbook(_in_memory(data), kind, data)
        if second is None or isinstance(book, type(second)):
            raise
        return second.grid(name, *args)


# ---------------------------------------------------------------- locating the form in a grid

_YEAR_TEXT = re.compile(r"^(?:nam\s+)?((?:19|20)\d\d)\b")


def _text(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def year_of(value: Any) -> int | None:
    """Year of a year label: "Năm 2021", "năm 2021", 2021, 2021.0, "2021"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value) if float(value).is_integer() and 1900 <= value < 2100 else None
    if isinstance(value, str):
        match = _YEAR_TEXT.match(fold(value))
        return int(match.group(1)) if match else None
    return None


def locate_form(grid: list[list[Any]], merged: list, form: FormDefinition,
                sheet_name: str) -> RawForm | tuple[str, dict[str, str], int] | None:
    """The form on this grid; a (sheet, columns, header row) tuple when only some columns match."""
    year_header = fold(form.year_header)
    initial = year_header[:1]
    best_partial: tuple[str, dict[str, str], int] | None = None
    for r, row in enumerate(grid):
        for c, value in enumerate(row):
            # The year header is a word or three starting with the right letter; nothing else is worth
            # folding whole.
            if not isinstance(value, str) or len(value) > 40 or fold(value[:8])[:1] != initial \
                    or not _is_year_header(fold(value), year_header):
                continue
            columns, band_end = _match_header(grid, merged, r, c, form)
            if len(columns) == len(form.metrics):
                return _extract(grid, form, sheet_name, r, c, band_end, columns)
            if len(columns) >= 3 and (best_partial is None or len(columns) > len(best_partial[1])):
                best_partial = (sheet_name, {k: column_letters(v) for k, v in columns.items()}, r + 1)
    return best_partial


def _is_year_header(folded: str, year_header: str) -> bool:
    """"Năm", and its short variants units type ("NĂM", "Năm báo cáo")."""
    return folded == year_header or (folded.startswith(year_header + " ") and len(folded.split()) <= 3)


def _cell(grid: list[list[Any]], r: int, c: int) -> Any:
    if r < len(grid) and c < len(grid[r]):
        value = grid[r][c]
        return None if value == "" else value
    return None


def _label_at(grid: list[list[Any]], r: int, c: int, form: FormDefinition) -> tuple[str, int | None] | None:
    """("year", year) or ("total", None) when the cell reads as a year or total label."""
    value = _cell(grid, r, c)
    if value is None:
        return None
    year = year_of(value)
    if year is not None:
        return ("year", year)
    if isinstance(value, str) and fold(value) in form.total_labels:
        return ("total", None)
    return None


def _row_label(grid: list[list[Any]], r: int, year_col: int, first_metric_col: int,
               form: FormDefinition) -> tuple[str, int | None, int] | None:
    """The row's label and its column: the year column first, then the other columns left of the data."""
    for c in [year_col, *(c for c in range(first_metric_col) if c != year_col)]:
        label = _label_at(grid, r, c, form)
        if label is not None:
            return (*label, c)
    return None


def _match_header(grid: list[list[Any]], merged: list, r: int, year_col: int,
                  form: FormDefinition) -> tuple[dict[str, int], int]:
    """Columns of each metric, from the header band starting at row r; and the band's last row."""
    band_end = r
    for probe in range(r + 1, min(r + 1 + MAX_HEADER_ROWS + 2, len(grid))):
        if _label_at(grid, probe, year_col, form) is not None:
            break
        if probe - r < MAX_HEADER_ROWS:
            band_end = probe
    # Copies of one template share their header band cell for cell: columns remembered by its content.
    spans = tuple(m for m in merged if m[1][0] >= r and m[0][0] <= band_end)
    key = (id(form), r, year_col, tuple(map(tuple, grid[r:band_end + 1])), spans)
    known = _HEADERS_SEEN.get(key)
    if known is not None and known[0] is form:
        return dict(known[1]), band_end
    columns = _header_columns(grid, merged, r, band_end, year_col, form)
    if len(_HEADERS_SEEN) >= 1024:
        _HEADERS_SEEN.clear()
    _HEADERS_SEEN[key] = (form, tuple(columns.items()))
    return columns, band_end


_HEADERS_SEEN: dict[tuple, tuple[FormDefinition, tuple[tuple[str, int], ...]]] = {}


def _header_columns(grid: list[list[Any]], merged: list, r: int, band_end: int, year_col: int,
                    form: FormDefinition) -> dict[str, int]:
    width = max((len(grid[i]) for i in range(r, band_end + 1)), default=0)
    fill = _merge_fill(grid, merged, r, band_end)
    texts: dict[int, str] = {}
    for c in range(width):
        if c == year_col:
            continue
        parts = []
        for i in range(r, band_end + 1):
            value = _cell(grid, i, c)
            if value is None:
                value = fill.get((i, c))
            if isinstance(value, str):
                parts.append(fold(value))
        text = " ".join(p for p in parts if p)
        if text:
            texts[c] = text
    return dict(_assign_columns(form.metrics, tuple(sorted(texts.items()))))


@lru_cache(maxsize=1024)
def _assign_columns(metrics: tuple, texts: tuple[tuple[int, str], ...]) -> tuple[tuple[str, int], ...]:
    """(metric key, column) for each metric whose label heads a column; the first free column wins.
    Cached: the copies of one form share their header texts."""
    columns: list[tuple[str, int]] = []
    taken: set[int] = set()
    for metric in metrics:
        for c, text in texts:
            if c not in taken and metric.matches(text):
                columns.append((metric.key, c))
                taken.add(c)
                break
    return tuple(columns)


def _merge_fill(grid: list[list[Any]], merged: list, r0: int, r1: int) -> dict[tuple[int, int], Any]:
    """Cells hidden under a merged range in the header band, mapped to the range's own text."""
    fill: dict[tuple[int, int], Any] = {}
    for (top, left), (bottom, right) in merged:
        if bottom < r0 or top > r1 or right - left > 64:
            continue
        value = _cell(grid, top, left)
        for i in range(max(top, r0), min(bottom, r1) + 1):
            for j in range(left, right + 1):
                fill[(i, j)] = value
    return fill


def _extract(grid: list[list[Any]], form: FormDefinition, sheet_name: str, header_r: int, year_col: int,
             band_end: int, columns: dict[str, int]) -> RawForm:
    first_metric_col = min(columns.values())
    rows: list[RawRow] = []
    total: RawRow | None = None
    blank_run = 0
    ignored: list[int] = []
    table_end = form.table_end
    metric_columns = tuple(columns.values())
    metric_items = tuple(columns.items())
    for r in range(band_end + 1, min(len(grid), band_end + 1 + MAX_TABLE_ROWS)):
        row_values = grid[r]
        if _ends_table(row_values, table_end):
            break
        label = _row_label(grid, r, year_col, first_metric_col, form)
        width = len(row_values)
        has_data = any(c < width and row_values[c] != "" and row_values[c] is not None for c in metric_columns)
        if label is None:
            if has_data:
                ignored.append(r + 1)
                blank_run = 0
            elif not any(v not in ("", None) for v in row_values):
                blank_run += 1
                if blank_run >= MAX_BLANK_RUN:
                    break
            continue
        blank_run = 0
        kind, year, label_col = label
        raw_row = RawRow(
            row=r + 1,
            label=_text(_cell(grid, r, label_col)),
            label_cell=address(r, label_col),
            year=year,
            cells=_raw_cells(row_values, r, metric_items),
        )
        if kind == "total":
            if total is None:
                total = raw_row
        else:
            rows.append(raw_row)
    located = RawForm(
        sheet=sheet_name,
        header_row=header_r + 1,
        year_column=column_letters(year_col),
        columns={k: column_letters(v) for k, v in columns.items()},
        unit_line="",
        unit_line_cell="",
        rows=rows,
        total_row=total,
    )
    located.unit_line, located.unit_line_cell = find_unit_line(grid, header_r, form)
    located.ignored_rows = ignored
    located.grid = snapshot(grid, (total or (rows[-1] if rows else None)), band_end)
    return located


def _ends_table(row_values: list[Any], table_end: tuple[str, ...]) -> bool:
    """A row starting the signature block ("Nơi nhận", "Người lập biểu"…) ends the table."""
    for value in row_values:
        if type(value) is str and value and fold(value).startswith(table_end):
            return True
    return False


def _raw_cells(row_values: list[Any], r: int, metric_items: tuple[tuple[str, int], ...]) -> dict[str, RawCell]:
    cells: dict[str, RawCell] = {}
    width = len(row_values)
    number = str(r + 1)
    for key, c in metric_items:
        value = row_values[c] if c < width else None
        if value == "":
            value = None
        elif isinstance(value, FormulaWithoutValue):
            cells[key] = RawCell(column_letters(c) + number, "=" + str(value).split("=", 1)[-1], "no_value")
            continue
        cells[key] = RawCell(column_letters(c) + number, value)
    return cells


SNAPSHOT_COLUMNS = 40


def snapshot(grid: list[list[Any]], last: RawRow | None, band_end: int) -> list[list[Any]]:
    """The part of the sheet a person would look at: everything down to a little past the table."""
    bottom = (last.row if last else band_end + 1) + 12
    # Cells stay as the reader gave them (str, float, bool, date…): all picklable, shown as text if need be.
    return [row[:SNAPSHOT_COLUMNS] for row in grid[:bottom]]


@lru_cache(maxsize=4096)
def _lines(text: str) -> tuple[str, ...]:
    """The non-blank lines of a cell, stripped (titles repeat from one copy of the form to the next)."""
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def find_unit_line(grid: list[list[Any]], header_r: int, form: FormDefinition) -> tuple[str, str]:
    """The line naming the unit: under "BCH ĐOÀN TỈNH …", else any "BCH …" line above the table."""
    cells: list[tuple[int, int, tuple[str, ...]]] = []
    for r in range(min(header_r, len(grid))):
        for c, value in enumerate(grid[r][:40]):
            if isinstance(value, str) and value:
                lines = _lines(value)
                if lines:
                    cells.append((r, c, lines))
    for index, (r, c, lines) in enumerate(cells):
        for i, line in enumerate(lines):
            if not fold(line).startswith(form.province_line):
                continue
            if i + 1 < len(lines):
                return lines[i + 1], address(r, c)
            # Just below it: the same column, or a few columns right when merges shifted the text.
            # Cells are in reading order, so the first match is the nearest one.
            for r2, c2, lines2 in cells[index + 1:]:
                if r < r2 <= r + 3 and c <= c2 <= c + 3:
                    return lines2[0], address(r2, c2)
    for r, c, lines in cells:
        for line in lines:
            folded = fold(line)
            if any(folded == p or folded.startswith(p + " ") for p in form.unit_line_prefixes) and not any(
                folded.startswith(p) for p in form.province_line
            ):
                return line, address(r, c)
    return "", ""


# ---------------------------------------------------------------- structure of the located form

def structure_issues(located: RawForm, form: FormDefinition) -> list[Issue]:
    """Missing, repeated and unexpected year rows; rows of numbers with no year."""
    issues: list[Issue] = []
    first_row: dict[int, int] = {}
    for row in located.rows:
        if row.year not in form.years:
            issues.append(make_issue("year_unexpected", label=row.label, sheet=located.sheet, cell=row.label_cell))
        elif row.year in first_row:
            issues.append(make_issue("year_duplicate", year=row.year, first_row=first_row[row.year],
                                     sheet=located.sheet, cell=row.label_cell, found=row.label))
        else:
            first_row[row.year] = row.row
    issues.extend(make_issue("year_missing", year=year, sheet=located.sheet)
                  for year in form.years if year not in first_row)
    issues.extend(make_issue("row_ignored", row=row_number, sheet=located.sheet,
                             cell=f"{located.year_column}{row_number}")
                  for row_number in located.ignored_rows)
    return issues


# ---------------------------------------------------------------- OOXML details calamine does not expose

_NS_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_NS_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_NS_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"


def _ooxml_sheet_parts(data: bytes) -> dict[str, str]:
    """Sheet name → zip member path, from workbook.xml and its relationships."""
    from defusedxml import ElementTree

    try:
        with zipfile.ZipFile(_in_memory(data)) as archive:
            workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
            rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except Exception:  # strict-OOXML namespaces or odd packaging: formulas then go unchecked
        return {}
    targets = {}
    for rel in rels.iter(f"{_NS_PKG_REL}Relationship"):
        target = rel.get("Target", "")
        target = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
        targets[rel.get("Id")] = target
    parts = {}
    for sheet in workbook.iter(f"{_NS_MAIN}sheet"):
        rel_id = sheet.get(f"{_NS_REL}id")
        if rel_id in targets:
            parts[sheet.get("name", "")] = targets[rel_id]
    return parts


def _mark_formulas(data: bytes, part: str, located: RawForm) -> None:
    """Blank-looking data cells that hold a formula with no cached number, or an error value."""
    from defusedxml import ElementTree

    wanted = {cell.address: cell for row in located.rows for cell in row.cells.values() if cell.value is None}
    if located.total_row is not None:
        wanted.update({c.address: c for c in located.total_row.cells.values() if c.value is None})
    if not part or not wanted:
        return
    try:
        with zipfile.ZipFile(_in_memory(data)) as archive, archive.open(part) as stream:
            for _, element in ElementTree.iterparse(stream, events=("end",)):
                if element.tag != f"{_NS_MAIN}c":
                    if element.tag == f"{_NS_MAIN}row":
                        element.clear()
                    continue
                cell = wanted.get(element.get("r", ""))
                if cell is not None:
                    formula = element.find(f"{_NS_MAIN}f")
                    cached = element.find(f"{_NS_MAIN}v")
                    cached_text = (cached.text or "").strip() if cached is not None else ""
                    if element.get("t") == "e" and cached_text:
                        cell.formula_state = f"error:{cached_text}"
                    elif formula is not None and not cached_text:
                        cell.formula_state = "no_value"
                        cell.value = "=" + (formula.text or "")
    except Exception:  # the values calamine gave stand; an unreadable part cannot add issues
        return

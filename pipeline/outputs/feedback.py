"""Feedback copies: one workbook per unit whose report needs attention, ready to attach to the reply.

The first sheet lists what is wrong in the unit's own words (cell, severity, message, what was written,
what is expected); the second is the unit's submitted sheet as received, with every problem cell
coloured and carrying a comment, so the person who filled the form sees the remark where they typed.
A copy is always .xlsx, whatever the unit sent (.xls, .ods): that is the one format every program the
units use opens, and the one xlsxwriter writes.

Everything a unit typed is untrusted: the workbook is created with string-to-formula/URL/number
conversion off and every text goes through `write_string`, so "=HYPERLINK(…)" arrives as text.

Nothing here reads the inbox. A submission whose sheet was not kept at the first reading (its only
remarks came from validation) is read again by the caller: `grids_needed` lists them, the caller reads
them (pipeline.read.isolated), `grids_from_reads` keeps the sheets whose bytes are the ones judged, and
`write_feedback` takes those grids.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.core.cells import cell_position
from pipeline.stages.consolidate import Consolidation, FileOutcome
from pipeline.core.files import portable_name, write_file_atomic
from pipeline.core.formatting import LARGEST_GROUPED, NUMBER_FORMAT, format_number, modified_at
from pipeline.core.issues import Issue
from pipeline.core.textnorm import fold, printable
from pipeline.core.wording import SEVERITY_WORDS, STATUS_WORDS, clip, listed, sheet_title

if TYPE_CHECKING:  # a type only: the readers are the caller's
    from pipeline.read.isolated import ReadOutcome

Grid = list[list[Any]]

FEEDBACK_FOLDER = "phan_hoi"
SHEET_ISSUES = "Sai lệch cần sửa"
ISSUE_HEADERS = ("STT", "Ô", "Mức độ", "Nội dung", "Giá trị ghi", "Giá trị đúng / yêu cầu")
HEADER_ROW = 11  # 0-based row of the issue table's header on the first sheet

# Excel's own "light red / yellow fill with dark text" styles, which users already read as error / warning.
FILLS = {"error": "#FFC7CE", "warning": "#FFEB9C", "info": "#DDEBF7"}
FONT_COLOURS = {"error": "#9C0006", "warning": "#9C5700", "info": "#1F4E79"}
_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}

_LINE_HEIGHT = 15.75  # points per line of 12 pt Times New Roman
_FONT = {"font_name": "Times New Roman", "font_size": 12, "valign": "vcenter"}
_TEXT_CAP = 22  # widest a column of the submitted sheet gets before its text wraps


log = logging.getLogger(__name__)


def listed_issues(outcome: FileOutcome) -> list[Issue]:
    """The issues a unit is told about: everything but routine notes (same choice as tong_hop.xlsx)."""
    return listed(outcome.issues)


def needs_feedback(outcome: FileOutcome) -> bool:
    return any(i.severity != "info" for i in outcome.issues)


def verdict(outcome: FileOutcome) -> str:
    if outcome.has_errors:
        return STATUS_WORDS["rejected"]
    return STATUS_WORDS["warnings"] if outcome.warnings else STATUS_WORDS["ok"]


def marked_cells(outcome: FileOutcome, issues: list[Issue] | None = None) -> dict[tuple[int, int], list[Issue]]:
    """Cells of the submitted sheet that carry a remark, each with its issues in listed order."""
    marks: dict[tuple[int, int], list[Issue]] = {}
    for issue in listed_issues(outcome) if issues is None else issues:
        if issue.sheet not in ("", outcome.sheet):
            continue
        position = cell_position(issue.cell)
        if position is not None:
            marks.setdefault(position, []).append(issue)
    return marks


def worst(issues: list[Issue]) -> str:
    return min((i.severity for i in issues), key=_SEVERITY_RANK.__getitem__)


def comment_text(issues: list[Issue]) -> str:
    return clip("\n".join(f"{SEVERITY_WORDS[i.severity]}: {i.message}" for i in issues))


def feedback_file_name(code: str) -> str:
    # Codes come from the registry, but a file name must stay one name in one folder on every system.
    return portable_name(re.sub(r"[^\w.-]", "_", code).strip("."), ".xlsx", fallback="don_vi")


def _wanted(consolidation: Consolidation) -> list[tuple[str, FileOutcome]]:
    """(unit code, submission) of every copy to write: none above `feedback_limit` (a national round:
    thousands of copies would cost minutes and nobody mails them from here)."""
    wanted = [(code, o) for code, o in consolidation.submissions.items() if needs_feedback(o)]
    return wanted if len(wanted) <= consolidation.feedback_limit else []


def grids_needed(consolidation: Consolidation) -> list[FileOutcome]:
    """The submissions whose copy shows their sheet but whose sheet was not kept at the first reading:
    the caller reads these files again and hands the reads to `grids_from_reads`."""
    return [outcome for _, outcome in _wanted(consolidation) if not outcome.grid and outcome.sheet]


def grids_from_reads(outcomes: Sequence[FileOutcome], reads: Sequence[Sequence[ReadOutcome]]) -> dict[str, Grid]:
    """Unit code → the sheet read again for its copy, from `reads[i]`, the second reading of
    `outcomes[i]` (as `grids_needed` listed them: files holding one submission). Pure: nothing is opened here.

    A copy shows exactly the bytes that were judged, or no sheet: the file may have been replaced since
    (another unit's report saved over it, a link or pipe swapped in), and its sheet under this file's
    remarks would point the unit at cells it never typed. A read whose sha256 is not the outcome's
    gives no grid: that copy keeps the remarks list alone, which is still true of what the unit sent;
    dropping the copy would tell the unit nothing at all.
    """
    if len(outcomes) != len(reads):
        raise ValueError(f"{len(reads)} reads for {len(outcomes)} submissions")
    grids: dict[str, Grid] = {}
    for outcome, file_reads in zip(outcomes, reads, strict=True):
        read = file_reads[0]  # only single submissions of a file are read again (containers keep their sheets)
        if not outcome.sha256 or read.sha256 != outcome.sha256:
            log.warning("%s changed since it was assessed (sha256 %s, now %s): its feedback copy lists the "
                        "remarks without the sheet", outcome.name, outcome.sha256 or "unknown",
                        read.sha256 or "unreadable")
            continue
        located = read.result.form
        if located is not None and printable(located.sheet) == outcome.sheet:
            grids[outcome.unit] = located.grid
    return grids


def write_feedback(consolidation: Consolidation, folder: Path, grids: dict[str, Grid]) -> list[Path]:
    """`folder/phan_hoi/<unit code>.xlsx` for every unit whose current report has errors or warnings.

    A copy shows the submitted sheet kept from the first reading, else `grids[unit code]` (see
    `grids_from_reads`), else the remarks alone. No inbox file is opened."""
    paths: list[Path] = []
    wanted = _wanted(consolidation)
    if not wanted:
        count = sum(1 for o in consolidation.submissions.values() if needs_feedback(o))
        if count:
            log.info("%d units need feedback, above feedback_limit %d: no feedback copies written",
                     count, consolidation.feedback_limit)
    for code, outcome in wanted:
        target = folder / FEEDBACK_FOLDER
        target.mkdir(parents=True, exist_ok=True)
        path = target / feedback_file_name(code)
        write_file_atomic(path, build_feedback(consolidation, outcome, outcome.grid or grids.get(code, [])))
        paths.append(path)
    return paths


def build_feedback(consolidation: Consolidation, outcome: FileOutcome, grid: Grid | None = None) -> bytes:
    """The feedback workbook for one submission, as .xlsx bytes; its second sheet shows `grid` (by
    default the grid kept from the first reading), none when it is empty."""
    import xlsxwriter

    grid = outcome.grid if grid is None else grid
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                                        "strings_to_numbers": False})
    unit = next((u for u in consolidation.registry.units if u.code == outcome.unit), None)
    unit_text = f"{unit.name} ({unit.code})" if unit else (outcome.unit or "Không xác định được đơn vị")
    book.set_properties({"title": clip(f"Phản hồi báo cáo – {unit_text}")})
    styles = _Styles(book)
    issues = listed_issues(outcome)
    marks = marked_cells(outcome, issues)
    grid_title = sheet_title(outcome.sheet or "Biểu mẫu", {SHEET_ISSUES}) if grid else ""
    _issues_sheet(book, styles, consolidation, outcome, unit_text, issues, grid_title, marks)
    if grid:
        _grid_sheet(book, styles, consolidation, outcome, grid, grid_title, marks)
    book.close()
    return buffer.getvalue()


class _Styles:
    """Formats are created once per workbook and per look; xlsxwriter keeps every one it is given."""

    def __init__(self, book) -> None:
        self.book = book
        self._cache: dict[tuple, object] = {}

    def get(self, **props) -> object:
        key = tuple(sorted(props.items()))
        if key not in self._cache:
            self._cache[key] = self.book.add_format({**_FONT, **props})
        return self._cache[key]

    def marked(self, severity: str | None, **props) -> object:
        if severity is None:
            return self.get(**props)
        return self.get(bg_color=FILLS[severity], font_color=FONT_COLOURS[severity], **props)


def _lines(text: str, width: float) -> int:
    per_line = max(1, int(width * 1.1))  # Times New Roman runs about 1.2 characters per width unit
    return sum(max(1, math.ceil(len(part) / per_line)) for part in text.split("\n"))


def _page_setup(sheet) -> None:
    sheet.set_paper(9)  # A4
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)
    sheet.set_margins(left=0.5, right=0.5, top=0.6, bottom=0.6)


def _quoted(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


# ---------------------------------------------------------------- Sai lệch cần sửa

_ISSUE_WIDTHS = {0: 5, 1: 8, 2: 11, 3: 70}


def _issues_sheet(book, s: _Styles, c: Consolidation, outcome: FileOutcome, unit_text: str, issues: list[Issue],
                  grid_title: str, marks: dict[tuple[int, int], list[Issue]]) -> None:
    sheet = book.add_worksheet(SHEET_ISSUES)
    widths: dict[int, float] = dict(_ISSUE_WIDTHS)
    widths[4] = min(30.0, max([12.0] + [len(i.found) * 1.1 + 2 for i in issues]))
    widths[5] = min(30.0, max([14.0] + [len(i.expected) * 1.1 + 2 for i in issues]))
    last = len(ISSUE_HEADERS) - 1
    sheet.merge_range(0, 0, 0, last, "KẾT QUẢ KIỂM TRA BÁO CÁO", s.get(bold=True, font_size=14, align="center"))
    about = f"{c.form.subtitle.format(province=c.province)} {c.form.period}"
    sheet.merge_range(1, 0, 1, last, about, s.get(bold=True, align="center", text_wrap=True))
    sheet.set_row(1, _LINE_HEIGHT * _lines(about, sum(widths.values())) + 2)
    label, value = s.get(bold=True), s.get()
    state = "rejected" if outcome.has_errors else ("warnings" if outcome.warnings else "ok")
    facts = (
        ("Đơn vị:", unit_text, s.get(bold=True)),
        ("Tệp:", outcome.name, value),
        ("Trang tính:", outcome.sheet or "–", value),
        ("Thời gian nhận:", modified_at(outcome.mtime).replace("T", " ")[:19], value),
        ("Kết luận:", verdict(outcome), s.marked({"rejected": "error", "warnings": "warning"}.get(state), bold=True)),
    )
    for row, (name, text, style) in enumerate(facts, start=3):
        sheet.merge_range(row, 0, row, 2, name, label)
        sheet.merge_range(row, 3, row, last, clip(text), style)
    guidance = _guidance(outcome, grid_title)
    sheet.merge_range(9, 0, 9, last, guidance, s.get(italic=True, text_wrap=True, valign="top"))
    sheet.set_row(9, _LINE_HEIGHT * _lines(guidance, sum(widths.values())) + 2)

    header = s.get(bold=True, border=1, align="center", text_wrap=True, bg_color="#DDEBF7")
    for col, title in enumerate(ISSUE_HEADERS):
        sheet.write_string(HEADER_ROW, col, title, header)
    sheet.set_row(HEADER_ROW, 2 * _LINE_HEIGHT + 2)
    link = s.get(border=1, align="center", font_color="#0563C1", underline=1)
    for index, issue in enumerate(issues, start=1):
        row = HEADER_ROW + index
        severity_style = s.marked(issue.severity, border=1)
        sheet.write_number(row, 0, index, s.get(border=1, align="center"))
        position = cell_position(issue.cell)
        if grid_title and position is not None and position in marks:
            sheet.write_url(row, 1, f"internal:{_quoted(grid_title)}!{issue.cell.replace('$', '')}", link,
                            string=issue.cell)
        elif issue.cell:
            sheet.write_string(row, 1, clip(issue.cell), s.get(border=1, align="center"))
        else:
            sheet.write_blank(row, 1, None, s.get(border=1))
        sheet.write_string(row, 2, SEVERITY_WORDS[issue.severity], severity_style)
        wrapped = s.get(border=1, text_wrap=True)
        sheet.write_string(row, 3, clip(issue.message), wrapped)
        sheet.write_string(row, 4, clip(issue.found), wrapped)
        sheet.write_string(row, 5, clip(issue.expected), wrapped)
        lines = max(_lines(issue.message, widths[3]), _lines(issue.found, widths[4]),
                    _lines(issue.expected, widths[5]))
        sheet.set_row(row, _LINE_HEIGHT * lines + 2)
    if not issues:
        sheet.merge_range(HEADER_ROW + 1, 0, HEADER_ROW + 1, last, "Không có sai lệch.", s.get(border=1,
                                                                                              italic=True))
    for col, width in widths.items():
        sheet.set_column(col, col, width)
    _page_setup(sheet)
    sheet.repeat_rows(HEADER_ROW)
    sheet.freeze_panes(HEADER_ROW + 1, 0)


def _guidance(outcome: FileOutcome, grid_title: str) -> str:
    where = (f" Các ô có sai lệch được tô màu trên trang \"{grid_title}\" (đỏ: lỗi, vàng: cảnh báo, xanh: thông tin);"
             " đưa chuột vào ô để xem nội dung, bấm vào địa chỉ ô trong bảng dưới đây để đến ô đó."
             if grid_title else "")
    if outcome.has_errors:
        return ("Báo cáo chưa được tổng hợp. Đề nghị đơn vị sửa các lỗi dưới đây trong tệp báo cáo của mình và gửi "
                "lại." + where)
    return ("Báo cáo đã được tiếp nhận. Đề nghị đơn vị kiểm tra các cảnh báo dưới đây; nếu số liệu chưa đúng, hãy "
            "sửa và gửi lại báo cáo." + where)


# ---------------------------------------------------------------- the submitted sheet

_HEADER_CAP = 16  # header labels wrap at this width, as they did on the printed form
_HEADER_SEARCH = 8  # rows above the first data row where the header band may start


def _table_box(outcome: FileOutcome, grid: Grid, form_year_header: str) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right) of the form's table on the grid: header band down to the last data row.

    The grid keeps values only, so the borders and header look of the form are put back from what the
    reader found: the data cells, and the header row holding the year column's label.
    """
    positions = [pos for cell in (*outcome.cells.values(), *outcome.total_cells.values())
                 if (pos := cell_position(cell)) is not None]
    if not positions:
        return None
    first, bottom = min(r for r, _ in positions), max(r for r, _ in positions)
    left, right = min(c for _, c in positions), max(c for _, c in positions)
    wanted = fold(form_year_header)
    top = first
    for r in range(first - 1, max(-1, first - 1 - _HEADER_SEARCH), -1):
        row = grid[r] if r < len(grid) else []
        hits = [c for c, v in enumerate(row) if isinstance(v, str) and fold(v) == wanted]
        if hits:
            top, left = r, min(left, hits[0])
            break

    def used(col: int) -> bool:
        rows = range(first, min(bottom + 1, len(grid)))
        return any(col < len(grid[r]) and grid[r][col] not in ("", None) for r in rows)

    while left > 0 and used(left - 1):  # the running-number column left of the years
        left -= 1
    return top, left, bottom, right


def _grid_sheet(book, s: _Styles, c: Consolidation, outcome: FileOutcome, grid: Grid, title: str,
                marks: dict[tuple[int, int], list[Issue]]) -> None:
    sheet = book.add_worksheet(title)
    sheet.set_comments_author(f"Tỉnh đoàn {c.province}")
    box = _table_box(outcome, grid, c.form.year_header)
    first_data_row = min((pos[0] for cell in outcome.cells.values() if (pos := cell_position(cell))), default=None)
    data_columns = {pos[1] for cell in (*outcome.cells.values(), *outcome.total_cells.values())
                    if (pos := cell_position(cell)) is not None}

    def filled(r: int, col: int) -> bool:
        return r < len(grid) and col < len(grid[r]) and grid[r][col] not in ("", None)

    def in_box(r: int, col: int) -> bool:
        return box is not None and box[0] <= r <= box[2] and box[1] <= col <= box[3]

    def in_header(r: int, col: int) -> bool:
        return in_box(r, col) and first_data_row is not None and r < first_data_row

    # First pass: what each cell is and how wide its column must be; row heights need the final widths.
    cells: list[tuple[int, int, object, str]] = []
    widths: dict[int, float] = {}

    def see(col: int, text: str, cap: float) -> None:
        longest = max((len(line) for line in text.split("\n")), default=0)
        widths[col] = max(widths.get(col, 0), min(cap, longest * 1.1 + 2))

    for r, row in enumerate(grid):
        for col, value in enumerate(row):
            if value in ("", None):
                continue
            if isinstance(value, bool):
                cells.append((r, col, value, "bool"))
                see(col, "TRUE", _TEXT_CAP)
            elif isinstance(value, (int, float)) and math.isfinite(value):
                grouped = col in data_columns and value == int(value) and 0 <= value < LARGEST_GROUPED
                cells.append((r, col, value, "grouped" if grouped else "number"))
                see(col, format_number(value) if grouped else repr(value).removesuffix(".0"), _TEXT_CAP)
            else:
                text = clip(value if isinstance(value, str) else str(value))
                if in_header(r, col):
                    cells.append((r, col, text, "header"))
                    see(col, text, _HEADER_CAP)
                elif filled(r, col + 1) or in_box(r, col) or "\n" in text:
                    # Against a filled neighbour a text would be cut: it wraps instead of spilling over.
                    cells.append((r, col, text, "wrap"))
                    see(col, text, _TEXT_CAP)
                else:
                    cells.append((r, col, text, "spill"))

    heights: dict[int, int] = {}
    for r, col, value, kind in cells:
        severity = worst(marks[(r, col)]) if (r, col) in marks else None
        props: dict[str, object] = {"border": 1} if in_box(r, col) else {}
        if kind == "bool":
            sheet.write_boolean(r, col, value, s.marked(severity, **props))
        elif kind in ("grouped", "number"):
            if kind == "grouped":
                props["num_format"] = NUMBER_FORMAT
            sheet.write_number(r, col, value, s.marked(severity, **props))
        else:
            assert isinstance(value, str)  # the first pass keeps every other kind as its text
            if kind == "header":
                props.update(bold=True, align="center", text_wrap=True)
            elif kind == "wrap":
                props["text_wrap"] = True
            sheet.write_string(r, col, value, s.marked(severity, **props))
            if kind != "spill":
                heights[r] = max(heights.get(r, 1), _lines(value, widths.get(col, 8.43)))
    written = {(r, col) for r, col, _, _ in cells}
    if box is not None:
        for r in range(box[0], box[2] + 1):
            for col in range(box[1], box[3] + 1):
                if (r, col) not in written and (r, col) not in marks:
                    sheet.write_blank(r, col, None, s.get(border=1))
    for (r, col), issues in sorted(marks.items()):
        if (r, col) not in written:
            sheet.write_blank(r, col, None, s.marked(worst(issues), **({"border": 1} if in_box(r, col) else {})))
        text = comment_text(issues)
        sheet.write_comment(r, col, text, {"width": 320, "height": max(60, 17 * _lines(text, 45) + 12),
                                           "font_name": "Times New Roman", "font_size": 11})
    for col, width in widths.items():
        sheet.set_column(col, col, max(5, width))
    for r, lines in heights.items():
        if lines > 1:
            sheet.set_row(r, _LINE_HEIGHT * lines + 2)
    if first_data_row:
        sheet.freeze_panes(first_data_row, 0)
    _page_setup(sheet)

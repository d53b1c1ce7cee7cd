"""Build real report workbooks in the shapes that units actually send back.

Tests and ``scripts/make_sample_inbox.py`` share this module so that every
fixture is a genuine file written by a genuine producer (openpyxl,
XlsxWriter, LibreOffice, Gnumeric) rather than a hand-made cell grid.

The layout of one form is computed once (:func:`FormSpec.cell_of` and the
writers agree by construction) and then rendered by each writer.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Literal, Mapping, Sequence, Union

try:  # the sample generator may run without pytest installed
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

METRICS: tuple[str, ...] = (
    "members_total",
    "outstanding_members",
    "quota_assigned",
    "admitted_pupils",
    "admitted_students",
    "admitted_workers_state",
    "admitted_workers_private",
)
METRIC_COLUMNS: dict[str, str] = dict(zip(METRICS, "CDEFGHI"))
ADMITTED_METRICS: tuple[str, ...] = METRICS[3:]
YEARS: tuple[int, ...] = (2021, 2022, 2023)

BLANK_UNIT_LINE = "BCH....."
PARENT_LINE = "BCH ĐOÀN TỈNH BÌNH DƯƠNG"
PARTY_LINE = "ĐOÀN TNCS HỒ CHÍ MINH"
REPORT_TITLE = "BÁO CÁO"
REPORT_SUBJECT = (
    "Kết quả công tác phát triển đảng trong học sinh, sinh viên, "
    "thanh niên công nhân tỉnh Bình Dương"
)
REPORT_PERIOD = "giai đoạn 2021 - 2023"

HEADER_LABELS: dict[str, str] = {
    "A": "TT",
    "B": "Năm",
    "C": "Tổng số đoàn viên",
    "D": "Số đoàn viên ưu tú",
    "E": "Chỉ tiêu được giao kết nạp Đảng",
    "F": "Số học sinh được kết nạp đảng",
    "G": "Số sinh viên được kết nạp đảng",
}
WORKERS_LABEL = "Số TNCCN được kết nạp Đảng"
# The 3-row variant splits the workers label over two rows.
WORKERS_LABEL_SPLIT = ("Số TNCCN được kết nạp", "Đảng")
WORKERS_SUBLABELS = ("Khu vực nhà nước", "Khu vực DN ngoài nhà nước")

DEFAULT_TITLE_LINES: tuple[str, ...] = (
    "(Kèm theo Kế hoạch số 45-KH/TĐTN-TCKT ngày 15/01/2024 của Ban Thường vụ Tỉnh đoàn)",
    "Kính gửi: Ban Thường vụ Tỉnh đoàn Bình Dương",
    "",
    "Đơn vị tính: người",
)

INSTRUCTION_LINES: tuple[str, ...] = (
    "HƯỚNG DẪN ĐIỀN BIỂU MẪU",
    "",
    "1. Mỗi đơn vị điền 01 bản và gửi về Ban Tổ chức - Kiểm tra Tỉnh đoàn trước ngày 15/02/2024.",
    "2. Các cột số liệu ghi số nguyên; chỉ tiêu nào không có số liệu thì ghi 0, không để trống.",
    "3. Không thêm, bớt cột; không đổi thứ tự các năm 2021, 2022, 2023.",
    "4. Cột \"Chỉ tiêu được giao kết nạp Đảng\" ghi theo chỉ tiêu Ban Thường vụ Tỉnh đoàn giao hằng năm.",
    "5. TNCCN: thanh niên công nhân, chia theo khu vực nhà nước và khu vực doanh nghiệp ngoài nhà nước.",
    "6. Số đoàn viên được kết nạp Đảng không vượt quá số đoàn viên ưu tú của năm đó.",
)

ZIP_EPOCH = datetime(2024, 2, 5, 9, 0, 0)


@dataclass(frozen=True)
class Formula:
    """A formula cell; ``cached`` is the result a spreadsheet program would store.

    ``text`` may reference other cells of the same form by placeholder:
    ``{members_total}`` is that metric's cell on the same row and
    ``{members_total@2022}`` the one on the 2022 row, so a formula keeps
    pointing at the right cell whatever offsets the spec uses.
    """

    text: str
    cached: int | float | str | None = None


CellInput = Union[int, float, str, Formula, None]
YearLabelStyle = Literal["Năm", "năm", "number", "text"]
# An inserted row is blank (None), a note (str, written in column A and
# merged across the table) or explicit cells for columns A, B, C, ...
InsertedRow = Union[None, str, Sequence[CellInput]]


@dataclass(frozen=True)
class Style:
    bold: bool = False
    italic: bool = False
    size: int = 13
    h_align: str | None = None
    v_align: str = "center"
    wrap: bool = False
    border: bool = False
    num_format: str | None = None


STYLES: dict[str, Style] = {
    "org": Style(h_align="center"),
    "org_bold": Style(bold=True, h_align="center"),
    "place_date": Style(italic=True, h_align="center"),
    "title": Style(bold=True, size=14, h_align="center"),
    "subtitle": Style(bold=True, h_align="center", wrap=True),
    "period": Style(bold=True, h_align="center"),
    "note": Style(italic=True, h_align="left"),
    "header": Style(bold=True, h_align="center", wrap=True, border=True),
    "tt": Style(h_align="center", border=True),
    "year": Style(h_align="center", border=True),
    "num": Style(h_align="right", border=True, num_format="#,##0"),
    "inserted": Style(italic=True, h_align="center", border=True),
    "inserted_note": Style(italic=True, h_align="left", border=True),
    "total_label": Style(bold=True, h_align="center", border=True),
    "total_num": Style(bold=True, h_align="right", border=True, num_format="#,##0"),
    "sign_bold": Style(bold=True, h_align="center"),
    "sign_note": Style(italic=True, bold=True, h_align="left", size=12),
    "sign_small": Style(h_align="left", size=11),
    "plain": Style(h_align="left", wrap=False),
    "inst_title": Style(bold=True, size=14, h_align="left"),
}

COLUMN_WIDTHS: dict[str, float] = {
    "A": 6, "B": 12, "C": 14, "D": 13, "E": 14, "F": 13, "G": 13, "H": 14, "I": 16,
}


@dataclass
class FormSpec:
    """Everything that distinguishes one filled-in copy of the form."""

    unit_line: str = BLANK_UNIT_LINE
    values: dict[int, dict[str, CellInput]] = field(default_factory=lambda: default_values(0))
    place_date: str = "Bình Dương, ngày 05 tháng 02 năm 2024"
    year_labels: YearLabelStyle = "Năm"
    year_label_overrides: dict[int, CellInput] = field(default_factory=dict)
    # Order of the data rows by year; may omit or repeat a year.
    row_years: list[int] | None = None
    # Values for the second row of a repeated year (defaults to the first's).
    repeat_values: dict[int, dict[str, CellInput]] = field(default_factory=dict)
    title_rows: int = 0
    title_lines: tuple[str, ...] = DEFAULT_TITLE_LINES
    header_rows: Literal[2, 3] = 2
    inserted_rows: list[InsertedRow] = field(default_factory=list)
    total_row: str | None = None
    # None: SUM formulas with the cached sum; otherwise the cells as given.
    total_values: dict[str, CellInput] | None = None
    sheet_name: str = "Biểu mẫu"
    instruction_sheet: bool = False
    instruction_sheet_name: str = "Hướng dẫn"
    hidden_sheet: bool = False
    hidden_sheet_name: str = "Bản cũ"
    hidden_values: dict[int, dict[str, CellInput]] | None = None
    # Further copies of the form in the same workbook, each on a sheet of its own (its `sheet_name`)
    # after this one: a Đoàn Khối sending a member unit's form along with its own.
    more_forms: list[FormSpec] = field(default_factory=list)
    signer: str = "Nguyễn Văn An"
    author: str = "User"
    saved_at: datetime = ZIP_EPOCH

    def __post_init__(self) -> None:
        if self.header_rows not in (2, 3):
            raise ValueError("header_rows must be 2 or 3")
        unknown = {m for row in self.values.values() for m in row} - set(METRICS)
        if unknown:
            raise ValueError(f"unknown metrics: {sorted(unknown)}")

    # -- geometry -----------------------------------------------------
    @property
    def header_row(self) -> int:
        return 8 + self.title_rows

    @property
    def first_inserted_row(self) -> int:
        return self.header_row + self.header_rows

    @property
    def first_data_row(self) -> int:
        return self.first_inserted_row + len(self.inserted_rows)

    @property
    def years_in_rows(self) -> list[int]:
        return list(self.row_years) if self.row_years is not None else sorted(self.values)

    def data_rows(self) -> list[tuple[int, int, dict[str, CellInput]]]:
        """(sheet row, year, values) for each data row, top to bottom."""
        rows: list[tuple[int, int, dict[str, CellInput]]] = []
        seen: set[int] = set()
        for offset, year in enumerate(self.years_in_rows):
            if year in seen and year in self.repeat_values:
                vals = self.repeat_values[year]
            else:
                vals = self.values.get(year, {})
            seen.add(year)
            rows.append((self.first_data_row + offset, year, vals))
        return rows

    @property
    def last_data_row(self) -> int:
        return self.first_data_row + len(self.years_in_rows) - 1

    @property
    def total_row_number(self) -> int | None:
        return self.last_data_row + 1 if self.total_row else None

    @property
    def signature_row(self) -> int:
        return (self.total_row_number or self.last_data_row) + 2

    def row_of(self, year: int, occurrence: int = 0) -> int:
        rows = [r for r, y, _ in self.data_rows() if y == year]
        if len(rows) <= occurrence:
            raise KeyError(f"year {year} has no data row #{occurrence + 1}")
        return rows[occurrence]

    def cell_of(self, year: int, metric: str, occurrence: int = 0) -> str:
        """A1 address of ``metric`` on the row of ``year`` (``"year"`` gives column B)."""
        column = "B" if metric == "year" else METRIC_COLUMNS[metric]
        return f"{column}{self.row_of(year, occurrence)}"

    def total_cell(self, metric: str) -> str:
        if self.total_row_number is None:
            raise KeyError("spec has no total row")
        return f"{METRIC_COLUMNS[metric]}{self.total_row_number}"

    def sheet_names(self) -> list[str]:
        """Sheet names in workbook order."""
        names = []
        if self.instruction_sheet:
            names.append(self.instruction_sheet_name)
        if self.hidden_sheet:
            names.append(self.hidden_sheet_name)
        names.append(self.sheet_name)
        names.extend(extra.sheet_name for extra in self.more_forms)
        return names

    def year_label(self, year: int) -> CellInput:
        if year in self.year_label_overrides:
            return self.year_label_overrides[year]
        if self.year_labels == "number":
            return year
        if self.year_labels == "text":
            return str(year)
        return f"{self.year_labels} {year}"

    def expected_total(self, metric: str) -> int | float:
        """What a spreadsheet's SUM over the data rows yields (text is skipped)."""
        return excel_sum(vals.get(metric) for _, _, vals in self.data_rows())


def excel_sum(cells: Iterable[CellInput]) -> int | float:
    total: int | float = 0
    for cell in cells:
        if isinstance(cell, Formula):
            cell = cell.cached
        if isinstance(cell, (int, float)) and not isinstance(cell, bool):
            total += cell
    return total


# ---------------------------------------------------------------------------
# realistic numbers

PROFILES: dict[str, dict[str, tuple[float, ...]]] = {
    # members range, outstanding share range, admitted mix
    # (pupils, students, workers_state, workers_private), quota range
    "district": {"members": (3500, 16000), "outstanding": (0.035, 0.07),
                 "mix": (0.18, 0.07, 0.15, 0.60), "quota": (5, 60)},
    "agency": {"members": (2500, 5000), "outstanding": (0.05, 0.09),
               "mix": (0.0, 0.0, 0.85, 0.15), "quota": (5, 30)},
    "enterprise": {"members": (8000, 14000), "outstanding": (0.03, 0.05),
                   "mix": (0.0, 0.0, 0.10, 0.90), "quota": (20, 40)},
    "armed": {"members": (800, 3000), "outstanding": (0.06, 0.10),
              "mix": (0.0, 0.0, 1.0, 0.0), "quota": (5, 30)},
    "university": {"members": (1500, 14000), "outstanding": (0.03, 0.06),
                   "mix": (0.0, 1.0, 0.0, 0.0), "quota": (3, 40)},
    "college": {"members": (1200, 3000), "outstanding": (0.03, 0.06),
                "mix": (0.02, 0.98, 0.0, 0.0), "quota": (3, 12)},
}


def _split(total: int, mix: Sequence[float], rng: random.Random) -> list[int]:
    """Split ``total`` by ``mix`` with a little noise, keeping the exact sum."""
    weights = [w * rng.uniform(0.7, 1.3) for w in mix]
    scale = sum(weights) or 1.0
    raw = [total * w / scale for w in weights]
    parts = [int(x) for x in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - parts[i], reverse=True)
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def default_values(
    seed: int | str,
    *,
    profile: str = "district",
    quotas: Mapping[int, int] | None = None,
    members: int | None = None,
    years: Sequence[int] = YEARS,
) -> dict[int, dict[str, CellInput]]:
    """Plausible, mutually consistent figures for one unit.

    Guarantees: outstanding ≤ members, admitted total ≤ outstanding, every
    year-to-year change of members and outstanding below 30 %, and admitted
    totals near the quota (a unit may exceed its quota, as they often do).
    ``members`` pins the first year's member count to a unit's real scale.
    """
    conf = PROFILES[profile]
    rng = random.Random(f"{profile}:{seed}")
    lo, hi = conf["members"]
    drawn = rng.randint(int(lo), int(hi))
    members = drawn if members is None else members
    share = rng.uniform(*conf["outstanding"])
    q_lo, q_hi = conf["quota"]
    base_quota = max(int(q_lo), min(int(q_hi), round(members * share * rng.uniform(0.06, 0.12))))
    out: dict[int, dict[str, CellInput]] = {}
    for index, year in enumerate(years):
        if index:
            members = round(members * rng.uniform(0.93, 1.12))
            share = min(conf["outstanding"][1], max(conf["outstanding"][0], share * rng.uniform(0.92, 1.08)))
        outstanding = max(1, round(members * share))
        quota = quotas[year] if quotas and year in quotas else max(
            int(q_lo), min(int(q_hi), base_quota + rng.randint(-2, 3)))
        admitted = min(outstanding, max(0, round(quota * rng.uniform(0.8, 1.25))))
        parts = _split(admitted, conf["mix"], rng)
        out[year] = {
            "members_total": members,
            "outstanding_members": outstanding,
            "quota_assigned": quota,
            **dict(zip(ADMITTED_METRICS, parts)),
        }
    return out


# ---------------------------------------------------------------------------
# layout


@dataclass
class SheetLayout:
    name: str
    hidden: bool = False
    cells: dict[tuple[int, int], tuple[CellInput, str]] = field(default_factory=dict)
    merges: list[tuple[int, int, int, int, str]] = field(default_factory=list)
    widths: dict[str, float] = field(default_factory=dict)
    heights: dict[int, float] = field(default_factory=dict)
    landscape: bool = True

    def put(self, ref: str, value: CellInput, style: str) -> None:
        row, col = _split_ref(ref)
        self.cells[(row, col)] = (value, style)

    def merge(self, ref_range: str, value: CellInput, style: str) -> None:
        first, last = ref_range.split(":")
        r1, c1 = _split_ref(first)
        r2, c2 = _split_ref(last)
        self.cells[(r1, c1)] = (value, style)
        self.merges.append((r1, c1, r2, c2, style))


def _split_ref(ref: str) -> tuple[int, int]:
    match = re.fullmatch(r"([A-Z]+)(\d+)", ref)
    if not match:
        raise ValueError(ref)
    col = 0
    for ch in match.group(1):
        col = col * 26 + ord(ch) - 64
    return int(match.group(2)), col


_PLACEHOLDER = re.compile(r"\{(\w+)(?:@(\d{4}))?\}")


def _resolve(value: CellInput, spec: FormSpec, row: int) -> CellInput:
    def sub(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            metric, year = match.group(1), match.group(2)
            target = spec.row_of(int(year)) if year else row
            return f"{METRIC_COLUMNS[metric]}{target}"
        return _PLACEHOLDER.sub(one, text)

    if isinstance(value, Formula):
        return Formula(sub(value.text), value.cached)
    if isinstance(value, str) and value.startswith("="):
        return sub(value)
    return value


def form_layout(spec: FormSpec, name: str | None = None, hidden: bool = False) -> SheetLayout:
    sheet = SheetLayout(name=name or spec.sheet_name, hidden=hidden, widths=dict(COLUMN_WIDTHS))
    sheet.merge("A1:D1", PARENT_LINE, "org")
    sheet.merge("F1:I1", PARTY_LINE, "org_bold")
    sheet.merge("A2:D2", spec.unit_line, "org_bold")
    sheet.merge("F2:I2", spec.place_date, "place_date")
    sheet.merge("A4:I4", REPORT_TITLE, "title")
    sheet.merge("A5:I5", REPORT_SUBJECT, "subtitle")
    sheet.heights[5] = 36
    sheet.merge("A6:I6", REPORT_PERIOD, "period")
    for index in range(spec.title_rows):
        text = spec.title_lines[index % len(spec.title_lines)] if spec.title_lines else ""
        if text:
            sheet.merge(f"A{7 + index}:I{7 + index}", text, "note")

    top = spec.header_row
    bottom = top + spec.header_rows - 1
    for column, label in HEADER_LABELS.items():
        sheet.merge(f"{column}{top}:{column}{bottom}", label, "header")
    if spec.header_rows == 2:
        sheet.merge(f"H{top}:I{top}", WORKERS_LABEL, "header")
    else:
        sheet.merge(f"H{top}:I{top}", WORKERS_LABEL_SPLIT[0], "header")
        sheet.merge(f"H{top + 1}:I{top + 1}", WORKERS_LABEL_SPLIT[1], "header")
    sheet.put(f"H{bottom}", WORKERS_SUBLABELS[0], "header")
    sheet.put(f"I{bottom}", WORKERS_SUBLABELS[1], "header")
    sheet.heights[top] = 48 if spec.header_rows == 2 else 30
    sheet.heights[bottom] = 36

    for offset, inserted in enumerate(spec.inserted_rows):
        row = spec.first_inserted_row + offset
        if inserted is None:
            for col in "ABCDEFGHI":
                sheet.put(f"{col}{row}", None, "tt")
        elif isinstance(inserted, str):
            sheet.merge(f"A{row}:I{row}", inserted, "inserted_note")
        else:
            for col, value in zip("ABCDEFGHI", list(inserted) + [None] * 9):
                sheet.put(f"{col}{row}", value, "inserted")

    for number, (row, year, vals) in enumerate(spec.data_rows(), start=1):
        sheet.put(f"A{row}", number, "tt")
        sheet.put(f"B{row}", spec.year_label(year), "year")
        for metric, column in METRIC_COLUMNS.items():
            sheet.put(f"{column}{row}", _resolve(vals.get(metric), spec, row), "num")

    total = spec.total_row_number
    if total is not None:
        sheet.merge(f"A{total}:B{total}", spec.total_row, "total_label")
        first, last = spec.first_data_row, spec.last_data_row
        for metric, column in METRIC_COLUMNS.items():
            if spec.total_values is None:
                value: CellInput = Formula(f"=SUM({column}{first}:{column}{last})",
                                           spec.expected_total(metric))
            else:
                value = _resolve(spec.total_values.get(metric), spec, total)
            sheet.put(f"{column}{total}", value, "total_num")

    sign = spec.signature_row
    sheet.put(f"A{sign}", "Nơi nhận:", "sign_note")
    sheet.put(f"A{sign + 1}", "- Ban Thường vụ Tỉnh đoàn;", "sign_small")
    sheet.put(f"A{sign + 2}", "- Lưu VP.", "sign_small")
    sheet.merge(f"F{sign}:I{sign}", "TM. BAN THƯỜNG VỤ", "sign_bold")
    sheet.merge(f"F{sign + 1}:I{sign + 1}", "BÍ THƯ", "sign_bold")
    sheet.merge(f"F{sign + 4}:I{sign + 4}", spec.signer, "sign_bold")
    return sheet


def instruction_layout(spec: FormSpec) -> SheetLayout:
    sheet = SheetLayout(name=spec.instruction_sheet_name, widths={"A": 110}, landscape=False)
    for index, line in enumerate(INSTRUCTION_LINES, start=1):
        if line:
            sheet.put(f"A{index}", line, "inst_title" if index == 1 else "plain")
    return sheet


def stale_values(values: Mapping[int, Mapping[str, CellInput]]) -> dict[int, dict[str, CellInput]]:
    """Older figures of the kind left behind on a hidden copy of the form."""
    out: dict[int, dict[str, CellInput]] = {}
    for year, row in values.items():
        out[year] = {}
        for metric, value in row.items():
            if isinstance(value, int) and not isinstance(value, bool):
                out[year][metric] = value - max(1, value // 10) if value > 2 else value + 1
            else:
                out[year][metric] = value
    return out


def workbook_layout(spec: FormSpec) -> tuple[list[SheetLayout], int]:
    """All sheets in order and the index of the spec's own form (the sheet left active)."""
    sheets: list[SheetLayout] = []
    if spec.instruction_sheet:
        sheets.append(instruction_layout(spec))
    if spec.hidden_sheet:
        hidden_spec = replace(
            spec,
            values=spec.hidden_values if spec.hidden_values is not None else stale_values(spec.values),
            total_row=None, inserted_rows=[], row_years=None, repeat_values={},
        )
        sheets.append(form_layout(hidden_spec, name=spec.hidden_sheet_name, hidden=True))
    sheets.append(form_layout(spec))
    active = len(sheets) - 1
    sheets.extend(form_layout(extra) for extra in spec.more_forms)
    return sheets, active


def _column_letter(col: int) -> str:
    letters = ""
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


# ---------------------------------------------------------------------------
# writers


def write_openpyxl(spec: FormSpec, path: str | os.PathLike[str]) -> Path:
    """Write with openpyxl.

    openpyxl cannot store a formula's cached result, so a :class:`Formula`
    is written as its text only; readers that want values see an empty cell,
    exactly as with any file openpyxl produced.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, Side

    thin = Side(style="thin")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)

    def apply(cell, style: Style) -> None:
        cell.font = Font(name="Times New Roman", size=style.size, bold=style.bold, italic=style.italic)
        cell.alignment = Alignment(horizontal=style.h_align, vertical=style.v_align, wrap_text=style.wrap)
        if style.border:
            cell.border = border
        if style.num_format:
            cell.number_format = style.num_format

    sheets, active = workbook_layout(spec)
    wb = Workbook()
    wb.remove(wb.active)
    for layout in sheets:
        ws = wb.create_sheet(layout.name)
        for (row, col), (value, style_name) in sorted(layout.cells.items()):
            cell = ws.cell(row=row, column=col)
            if isinstance(value, Formula):
                cell.value = value.text
            elif value is not None:
                cell.value = value
            apply(cell, STYLES[style_name])
        for r1, c1, r2, c2, style_name in layout.merges:
            for row in range(r1, r2 + 1):
                for col in range(c1, c2 + 1):
                    if (row, col) != (r1, c1):
                        apply(ws.cell(row=row, column=col), STYLES[style_name])
            ws.merge_cells(start_row=r1, start_column=c1, end_row=r2, end_column=c2)
        for letter, width in layout.widths.items():
            ws.column_dimensions[letter].width = width
        for row, height in layout.heights.items():
            ws.row_dimensions[row].height = height
        ws.page_setup.paperSize = 9
        ws.page_setup.orientation = "landscape" if layout.landscape else "portrait"
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.page_setup.fitToHeight = 0
        if layout.hidden:
            ws.sheet_state = "hidden"
        ws.sheet_view.tabSelected = False
    wb.active = active
    wb.worksheets[active].sheet_view.tabSelected = True
    wb.properties.creator = spec.author
    wb.properties.lastModifiedBy = spec.author
    wb.properties.created = spec.saved_at
    path = Path(path)
    wb.save(path)
    # openpyxl stamps "now" into core.xml and every zip entry; pin both so
    # that regenerating a fixture gives byte-identical files.
    stamp = spec.saved_at.strftime("%Y-%m-%dT%H:%M:%SZ").encode()

    def pin_core(name: str, data: bytes) -> bytes:
        if name == "docProps/core.xml":
            data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                          rb"\g<1>" + stamp + rb"\g<2>", data)
        return data

    freeze_zip_timestamps(path, spec.saved_at, transform=pin_core)
    return path


def write_xlsxwriter(spec: FormSpec, path: str | os.PathLike[str]) -> Path:
    """Write with XlsxWriter, storing cached results of formulas.

    A formula without a cached value gets XlsxWriter's default cached 0,
    which is what such files really contain.
    """
    import xlsxwriter

    path = Path(path)
    sheets, active = workbook_layout(spec)
    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False})
    wb.set_properties({"author": spec.author, "created": spec.saved_at})
    formats: dict[str, object] = {}

    def fmt(style_name: str):
        if style_name not in formats:
            style = STYLES[style_name]
            props: dict[str, object] = {
                "font_name": "Times New Roman", "font_size": style.size,
                "bold": style.bold, "italic": style.italic,
                "valign": "vcenter" if style.v_align == "center" else style.v_align,
                "text_wrap": style.wrap,
            }
            if style.h_align:
                props["align"] = style.h_align
            if style.border:
                props["border"] = 1
            if style.num_format:
                props["num_format"] = style.num_format
            formats[style_name] = wb.add_format(props)
        return formats[style_name]

    def write(ws, row: int, col: int, value: CellInput, style_name: str) -> None:
        f = fmt(style_name)
        if isinstance(value, Formula):
            if value.cached is None:
                ws.write_formula(row, col, value.text, f)
            else:
                ws.write_formula(row, col, value.text, f, value.cached)
        elif isinstance(value, str) and value.startswith("="):
            ws.write_formula(row, col, value, f)
        elif isinstance(value, str):
            ws.write_string(row, col, value, f)
        elif isinstance(value, (int, float)):
            ws.write_number(row, col, value, f)
        else:
            ws.write_blank(row, col, None, f)

    for index, layout in enumerate(sheets):
        ws = wb.add_worksheet(layout.name)
        in_merge: set[tuple[int, int]] = set()
        for r1, c1, r2, c2, style_name in layout.merges:
            ws.merge_range(r1 - 1, c1 - 1, r2 - 1, c2 - 1, "", fmt(style_name))
            value = layout.cells.get((r1, c1), (None, style_name))[0]
            if value is not None:
                write(ws, r1 - 1, c1 - 1, value, style_name)
            in_merge.update((r, c) for r in range(r1, r2 + 1) for c in range(c1, c2 + 1))
        for (row, col), (value, style_name) in sorted(layout.cells.items()):
            if (row, col) not in in_merge:
                write(ws, row - 1, col - 1, value, style_name)
        for letter, width in layout.widths.items():
            col = _split_ref(f"{letter}1")[1] - 1
            ws.set_column(col, col, width)
        for row, height in layout.heights.items():
            ws.set_row(row - 1, height)
        ws.set_paper(9)
        if layout.landscape:
            ws.set_landscape()
        ws.fit_to_pages(1, 0)
        if index == active:
            ws.activate()
        if layout.hidden:
            ws.hide()
    wb.close()
    return path


# ---------------------------------------------------------------------------
# real programs

SOFFICE: str | None = shutil.which("soffice") or shutil.which("libreoffice")
SSCONVERT: str | None = shutil.which("ssconvert")
HAVE_SOFFICE: bool = SOFFICE is not None
HAVE_SSCONVERT: bool = SSCONVERT is not None

if pytest is not None:
    needs_soffice = pytest.mark.skipif(not HAVE_SOFFICE, reason="LibreOffice (soffice) is not installed")
    needs_ssconvert = pytest.mark.skipif(not HAVE_SSCONVERT, reason="Gnumeric (ssconvert) is not installed")

SOFFICE_FILTERS: dict[str, str] = {
    "xls": "xls:MS Excel 97",
    "ods": "ods",
    "xlsx": "xlsx:Calc MS Excel 2007 XML",
}
SSCONVERT_EXPORTERS: dict[str, str] = {
    ".xls": "Gnumeric_Excel:excel_biff8",
    ".xlsx": "Gnumeric_Excel:xlsx2",
    ".ods": "Gnumeric_OpenCalc:odf",
}


class ConversionError(RuntimeError):
    pass


def convert_with_soffice(
    src: str | os.PathLike[str], fmt: str, outdir: str | os.PathLike[str], *, timeout: float = 180
) -> Path:
    """Open ``src`` in LibreOffice and save it as ``fmt`` into ``outdir``.

    Each call uses its own throw-away profile: LibreOffice silently does
    nothing when another instance holds the profile, and a fresh profile
    keeps results independent of whatever the user configured.
    """
    if SOFFICE is None:
        raise ConversionError("soffice is not installed")
    if fmt not in SOFFICE_FILTERS:
        raise ValueError(f"unsupported format {fmt!r}; use one of {sorted(SOFFICE_FILTERS)}")
    src = Path(src).resolve()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    profile = Path(tempfile.mkdtemp(prefix="lo_profile_", dir="/tmp"))
    work = Path(tempfile.mkdtemp(prefix="lo_out_"))
    try:
        # Converting next to the source could overwrite it (xlsx -> xlsx).
        result = subprocess.run(
            [SOFFICE, "--headless", "--norestore", f"-env:UserInstallation={profile.as_uri()}",
             "--convert-to", SOFFICE_FILTERS[fmt], "--outdir", str(work), str(src)],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        produced = work / f"{src.stem}.{fmt}"
        if not produced.exists():
            raise ConversionError(
                f"soffice did not produce {produced.name} (exit {result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}")
        target = outdir / produced.name
        shutil.move(str(produced), target)
        return target
    finally:
        shutil.rmtree(profile, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def convert_with_ssconvert(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], *, timeout: float = 120
) -> Path:
    """Open ``src`` in Gnumeric and save it as ``dst`` (format by extension)."""
    if SSCONVERT is None:
        raise ConversionError("ssconvert is not installed")
    dst = Path(dst)
    exporter = SSCONVERT_EXPORTERS.get(dst.suffix.lower())
    if exporter is None:
        raise ValueError(f"unsupported target {dst.suffix!r}; use one of {sorted(SSCONVERT_EXPORTERS)}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [SSCONVERT, "--export-type", exporter, str(src), str(dst)],
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    if result.returncode != 0 or not dst.exists():
        raise ConversionError(f"ssconvert failed (exit {result.returncode}): {result.stderr.strip()}")
    return dst


def freeze_zip_timestamps(
    path: str | os.PathLike[str],
    when: datetime,
    *,
    transform: Callable[[str, bytes], bytes] | None = None,
) -> None:
    """Rewrite a zip-based workbook with every entry dated ``when``.

    Entry order, names, compression methods and contents are kept (so an
    .ods keeps its stored ``mimetype`` first); only the dates change, which
    is what makes regenerated fixtures byte-identical. Not a zip: no-op.
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        return
    stamp = when.timetuple()[:6]
    with zipfile.ZipFile(path) as zin:
        entries = [(info, zin.read(info.filename)) for info in zin.infolist()]
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as zout:
        for info, data in entries:
            if transform is not None:
                data = transform(info.filename, data)
            new = zipfile.ZipInfo(info.filename, date_time=stamp)
            new.compress_type = info.compress_type
            new.external_attr = info.external_attr
            new.create_system = info.create_system
            zout.writestr(new, data)
    os.replace(tmp, path)

"""`tong_hop.xlsx`: the workbook the board opens every morning, forwards upward, and answers from.

Written with xlsxwriter in memory (`build_workbook` returns its bytes; pipeline.outputs.runfolder writes them
to WORKBOOK_NAME). Every text that came from a submission goes through
`write_string`, and the workbook is created with string-to-formula/URL conversion off, so a unit's
"=HYPERLINK(…)" stays text.
"""

from __future__ import annotations

import io
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from collections.abc import Iterator

from pipeline.stages.changes import KINDS
from pipeline.stages.consolidate import Consolidation, FileOutcome
from pipeline.core.formatting import NUMBER_FORMAT, PERCENT_FORMAT, format_number, modified_at
from pipeline.core.issues import Issue
from pipeline.core.wording import SEVERITY_WORDS, STATUS_WORDS, clip, listed, sheet_title

WORKBOOK_NAME = "tong_hop.xlsx"

SHEET_PROVINCE = "Báo cáo tỉnh"
SHEET_STATUS = "Tình trạng nộp"
SHEET_VALUES = "Số liệu đơn vị"
SHEET_QUOTAS = "Chỉ tiêu"
SHEET_DISCREPANCIES = "Sai lệch"
SHEET_CHANGES = "Thay đổi"
DISCREPANCY_PREFIX = "SL - "
DEFAULT_UNIT_SHEET_LIMIT = 60

def unit_state(consolidation: Consolidation, code: str) -> str:
    """ok | warnings | rejected | unreadable (sent, but no form could be read in it) | scan_only (only a
    signed scan or photo arrived) | missing. A unit that sent anything is never "missing"."""
    submission = consolidation.submissions.get(code)
    if submission is None:
        return "scan_only" if code in consolidation.scan_only else "missing"
    if submission.status == "rejected":
        return "rejected" if submission.sheet else "unreadable"
    return "warnings" if submission.warnings else "ok"


@dataclass
class _Formats:
    title: object
    subtitle: object
    bold: object
    header: object
    text: object
    wrap: object
    number: object
    number_bold: object
    percent: object
    percent_bold: object
    link: object
    missing: object
    overdue: object
    center: object
    italic: object
    plain: object
    total: object
    nav: object
    file: object
    mismatch: object


def _formats(book) -> _Formats:
    base = {"font_name": "Times New Roman", "font_size": 12, "valign": "vcenter"}
    border = {**base, "border": 1}
    return _Formats(
        title=book.add_format({**base, "bold": True, "font_size": 14, "align": "center"}),
        subtitle=book.add_format({**base, "bold": True, "align": "center", "text_wrap": True}),
        bold=book.add_format({**base, "bold": True}),
        header=book.add_format({**border, "bold": True, "align": "center", "text_wrap": True, "bg_color": "#DDEBF7"}),
        text=book.add_format({**border, "text_wrap": False}),
        wrap=book.add_format({**border, "text_wrap": True}),
        number=book.add_format({**border, "num_format": NUMBER_FORMAT}),
        number_bold=book.add_format({**border, "num_format": NUMBER_FORMAT, "bold": True}),
        percent=book.add_format({**border, "num_format": PERCENT_FORMAT}),
        percent_bold=book.add_format({**border, "num_format": PERCENT_FORMAT, "bold": True}),
        link=book.add_format({**border, "font_color": "#0563C1", "underline": 1}),
        missing=book.add_format({**border, "bg_color": "#FCE4D6", "bold": True}),
        overdue=book.add_format({**border, "bg_color": "#F4B084", "bold": True, "font_color": "#9C0006"}),
        center=book.add_format({**border, "align": "center"}),
        italic=book.add_format({**base, "italic": True}),
        plain=book.add_format({**base}),
        total=book.add_format({**border, "bg_color": "#DDEBF7", "bold": True}),
        nav=book.add_format({**base, "font_color": "#0563C1", "underline": 1}),
        file=book.add_format({**border, "indent": 1}),
        mismatch=book.add_format({**border, "num_format": NUMBER_FORMAT, "bg_color": "#FFE699"}),
    )


def _page_setup(sheet, header_rows: int = 0, columns: str | None = None) -> None:
    sheet.set_paper(9)  # A4
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)
    sheet.set_margins(left=0.5, right=0.5, top=0.6, bottom=0.6)
    if header_rows:
        sheet.repeat_rows(0, header_rows - 1)


class _Widths:
    """Column widths that fit the content, as Excel's autofit would (xlsxwriter cannot measure)."""

    def __init__(self) -> None:
        self.widths: dict[int, float] = {}

    def see(self, col: int, value: object, minimum: float = 6, maximum: float = 60) -> None:
        text = value if isinstance(value, str) else (format_number(value) if isinstance(value, int) else str(value))
        longest = len(text) if "\n" not in text else max((len(line) for line in text.splitlines()), default=0)
        width = longest * 1.15 + 2
        current = self.widths.get(col)
        if current is None:
            self.widths[col] = min(maximum, max(minimum, width))
        elif width > current:
            self.widths[col] = min(maximum, width)

    def apply(self, sheet) -> None:
        for col, width in self.widths.items():
            sheet.set_column(col, col, width)


def _streamed_sheet(book, name: str):
    """A worksheet whose long body is streamed (pipeline.outputs.streamsheet)."""
    # Deferred like xlsxwriter itself: streamsheet subclasses xlsxwriter's Worksheet (~30 ms to import).
    from pipeline.outputs.streamsheet import StreamedWorksheet

    return book.add_worksheet(name, worksheet_class=StreamedWorksheet)


def build_workbook(consolidation: Consolidation, unit_sheet_limit: int | None = None) -> bytes:
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                                        "strings_to_numbers": False})
    formats = _formats(book)
    if unit_sheet_limit is None:
        unit_sheet_limit = consolidation.unit_sheet_limit
    taken = {SHEET_PROVINCE, SHEET_STATUS, SHEET_VALUES, SHEET_QUOTAS, SHEET_CHANGES, SHEET_DISCREPANCIES}
    units_with_issues = [u for u in consolidation.registry.units if _unit_issues(consolidation, u.code)]
    per_unit_sheets = len(units_with_issues) <= unit_sheet_limit
    discrepancy_sheets: dict[str, str] = {}
    if per_unit_sheets:
        for unit in units_with_issues:
            discrepancy_sheets[unit.code] = sheet_title(DISCREPANCY_PREFIX + unit.short_name, taken)
    _province_sheet(book, formats, consolidation)
    _status_sheet(book, formats, consolidation, discrepancy_sheets, per_unit_sheets)
    _values_sheet(book, formats, consolidation)
    _quota_sheet(book, formats, consolidation)
    _changes_sheet(book, formats, consolidation)
    if per_unit_sheets:
        for unit in units_with_issues:
            _unit_discrepancy_sheet(book, formats, consolidation, unit.code, discrepancy_sheets[unit.code])
    if not per_unit_sheets or _unattributed_issues(consolidation):
        _discrepancy_list_sheet(book, formats, consolidation, per_unit_sheets)
    with _deflate_level(WORKBOOK_DEFLATE_LEVEL):
        book.close()
    return buffer.getvalue()


# Level 1 compresses a national-scale workbook a third less well than zlib's default (6) but in a
# quarter of the time; a province's workbook is small either way.
WORKBOOK_DEFLATE_LEVEL = 1


@contextmanager
def _deflate_level(level: int) -> Iterator[None]:
    """xlsxwriter has no compression setting; zipfile reads zlib's default level for each member it
    compresses, so the default is set for the time the workbook is packed."""
    default = zlib.Z_DEFAULT_COMPRESSION
    # Deliberate monkeypatching of a constant the stubs declare Final.
    zlib.Z_DEFAULT_COMPRESSION = level  # type: ignore[misc]
    try:
        yield
    finally:
        zlib.Z_DEFAULT_COMPRESSION = default  # type: ignore[misc]


def _unit_issues(consolidation: Consolidation, code: str) -> list[Issue]:
    submission = consolidation.submissions.get(code)
    if submission is None:
        return []
    return listed(submission.issues)


def _unattributed_issues(consolidation: Consolidation) -> list[Issue]:
    return [i for f in consolidation.files if not f.unit and f.status == "rejected" for i in f.issues]


# ---------------------------------------------------------------- Báo cáo tỉnh

def _province_sheet(book, f: _Formats, c: Consolidation) -> None:
    sheet = book.add_worksheet(SHEET_PROVINCE)
    form = c.form
    province = c.province
    metrics = form.metrics
    last_col = 1 + len(metrics)
    texts = form.texts
    sheet.merge_range(0, 0, 0, 3, texts.issuer_line(province), f.subtitle)
    sheet.merge_range(0, 5, 0, last_col, texts.organisation, f.subtitle)
    sheet.merge_range(1, 0, 1, 3, texts.mark, f.subtitle)
    date = c.created
    sheet.merge_range(1, 5, 1, last_col, texts.report_place_date.format(
        province=province, day=f"{date.day:02d}", month=f"{date.month:02d}", year=date.year), f.italic)
    sheet.merge_range(3, 0, 3, last_col, form.title, f.title)
    sheet.merge_range(4, 0, 4, last_col, form.subtitle.format(province=province), f.subtitle)
    sheet.merge_range(5, 0, 5, last_col, form.period, f.subtitle)
    header_top, header_bottom = 7, 8
    sheet.merge_range(header_top, 0, header_bottom, 0, form.number_label, f.header)
    sheet.merge_range(header_top, 1, header_bottom, 1, form.year_header, f.header)
    col = 2
    groups_done: set[str] = set()
    for metric in metrics:
        if metric.group:
            if metric.group not in groups_done:
                span = sum(1 for m in metrics if m.group == metric.group)
                sheet.merge_range(header_top, col, header_top, col + span - 1, metric.group, f.header)
                groups_done.add(metric.group)
            sheet.write_string(header_bottom, col, metric.sublabel, f.header)
        else:
            sheet.merge_range(header_top, col, header_bottom, col, metric.label, f.header)
        col += 1
    sheet.set_row(header_top, 48)
    sheet.set_row(header_bottom, 48)
    for i, year in enumerate(form.years):
        row = header_bottom + 1 + i
        sheet.write_number(row, 0, i + 1, f.center)
        sheet.write_string(row, 1, form.year_label.format(year=year), f.center)
        for j, metric in enumerate(metrics):
            sheet.write_number(row, 2 + j, c.totals[(year, metric.key)], f.number)
    sheet.set_column(0, 0, 5)
    sheet.set_column(1, 1, 11)
    sheet.set_column(2, last_col, 14)
    accepted = sum(1 for u in c.registry.units if c.unit_status(u.code) == "accepted")
    note_row = header_bottom + len(form.years) + 2
    sheet.write_string(note_row, 0, f"Số liệu tổng hợp từ {accepted}/{len(c.registry.units)} đơn vị đã nộp báo cáo "
                                    "hợp lệ.", f.italic)
    shares_bottom = _shares_table(sheet, f, c, note_row + 2, last_col)
    sign_row = shares_bottom + 2
    for i, line in enumerate(texts.report_signature):
        sheet.merge_range(sign_row + i, 5, sign_row + i, last_col, line, f.subtitle)
    # Three empty rows for the signature under the signer's title.
    hint_row = sign_row + len(texts.report_signature) + 3
    sheet.merge_range(hint_row, 5, hint_row, last_col, texts.report_signature_hint, f.italic)
    _page_setup(sheet)
    sheet.freeze_panes(header_bottom + 1, 2)


def shares(c: Consolidation, year: int) -> dict[str, float | None]:
    """The shares the form asks for (its `[[shares]]`, in order): share key → ratio, None over 0."""
    totals = c.totals
    result: dict[str, float | None] = {}
    for share in c.form.shares:
        part = sum(totals[(year, k)] for k in share.numerator)
        whole = sum(totals[(year, k)] for k in share.denominator)
        result[share.key] = part / whole if whole else None
    return result


def _shares_table(sheet, f: _Formats, c: Consolidation, top: int, last_col: int) -> int:
    """The shares under the report, label across B..E and one column per year; returns its last row."""
    years = c.form.years
    first_year_col = last_col - len(years) + 1
    sheet.merge_range(top, 1, top, last_col, c.form.texts.shares_title, f.bold)
    sheet.merge_range(top + 1, 1, top + 1, first_year_col - 1, c.form.texts.shares_header, f.header)
    for j, year in enumerate(years):
        sheet.write_string(top + 1, first_year_col + j, c.form.year_label.format(year=year), f.header)
    per_year = {year: shares(c, year) for year in years}
    row = top + 1
    for share in c.form.shares:
        row += 1
        sheet.merge_range(row, 1, row, first_year_col - 1, share.label, f.text)
        for j, year in enumerate(years):
            value = per_year[year][share.key]
            if value is None:
                sheet.write_string(row, first_year_col + j, "–", f.center)
            else:
                sheet.write_number(row, first_year_col + j, value, f.percent)
    return row


# ---------------------------------------------------------------- Tình trạng nộp

STATUS_HEADERS = ("STT", "Mã đơn vị", "Tên đơn vị", "Tình trạng", "Tệp", "Thời gian nhận", "Số lỗi", "Số cảnh báo",
                  "Chi tiết", "Nộp muộn")


def _status_sheet(book, f: _Formats, c: Consolidation, discrepancy_sheets: dict[str, str],
                  per_unit_sheets: bool) -> None:
    sheet = _streamed_sheet(book, SHEET_STATUS)
    units = c.registry.units
    received = sum(1 for u in units if u.code in c.submissions)
    accepted = sum(1 for u in units if c.unit_status(u.code) == "accepted")
    sheet.write_string(0, 0, "TÌNH TRẠNG NỘP BÁO CÁO", f.bold)
    late = c.late_units()
    line = (f"{received}/{len(units)} đơn vị đã nộp; {accepted}/{len(units)} đơn vị hợp lệ; "
            f"{len(c.missing)} đơn vị chưa nộp.")
    if c.deadline is not None:
        line += f" Hạn nộp {c.deadline.strftime('%d/%m/%Y')}: {len(late)} đơn vị nộp muộn."
    sheet.write_string(1, 0, line, f.bold)
    header_row = 3
    widths = _Widths()
    for col, title in enumerate(STATUS_HEADERS):
        sheet.write_string(header_row, col, title, f.header)
        widths.see(col, title)
    widths.see(8, "Xem sai lệch")
    widths.see(9, "Nộp muộn")
    sheet.stream_from(header_row + 1)
    for i, unit in enumerate(units):
        row = header_row + 1 + i
        state = unit_state(c, unit.code)
        submission = c.submissions.get(unit.code)
        overdue = state == "missing" and c.past_deadline()
        cell = (f.overdue if overdue else f.missing) if state == "missing" else f.text
        words = STATUS_WORDS[state] + (" – quá hạn" if overdue else "")
        unit_cells = [(i + 1, f.center), (unit.code, cell), (clip(unit.name), cell), (words, cell)]
        widths.see(1, unit.code)
        widths.see(2, unit.name)
        widths.see(3, words)
        if submission is None and state == "scan_only":
            scans = [o for o in c.files if o.unit == unit.code and o.status == "ignored"]
            names = clip("; ".join(o.name for o in scans))
            sheet.stream_row(row, 0, [*unit_cells, (names, f.text), (_when(scans[-1]), f.text)])
            widths.see(4, names, maximum=50)
            continue
        if submission is None:
            sheet.stream_row(row, 0, [*unit_cells, *[(None, f.missing)] * (len(STATUS_HEADERS) - 4)])
            continue
        received_at = _when(submission)
        sheet.stream_row(row, 0, [*unit_cells, (clip(submission.name), f.text), (received_at, f.text),
                                  (submission.errors, f.center), (submission.warnings, f.center)])
        widths.see(4, submission.name, maximum=50)
        widths.see(5, received_at)
        target = discrepancy_sheets.get(unit.code)
        if not target and not per_unit_sheets and _unit_issues(c, unit.code):
            target = SHEET_DISCREPANCIES
        if target:
            sheet.write_url(row, 8, f"internal:'{target}'!A1", f.link, string="Xem sai lệch")
        else:
            sheet.stream_row(row, 8, [(None, f.text)])
        sheet.stream_row(row, 9, [("Nộp muộn" if unit.code in late else "", f.text)])
    sheet.autofilter(header_row, 0, header_row + len(units), len(STATUS_HEADERS) - 1)
    other = [o for o in c.files if not o.unit or o.status in ("ignored", "superseded")]
    if other:
        # Reuses the unit table's columns: file names under "Tệp", reasons across the narrow columns at the right.
        row = header_row + len(units) + 3
        sheet.write_string(row, 0, "CÁC TỆP KHÁC TRONG HỘP THƯ (không được tổng hợp)", f.bold)
        row += 1
        sheet.write_string(row, 0, "STT", f.header)
        sheet.merge_range(row, 1, row, 3, "Tình trạng", f.header)
        sheet.write_string(row, 4, "Tệp", f.header)
        sheet.write_string(row, 5, "Thời gian nhận", f.header)
        sheet.merge_range(row, 6, row, len(STATUS_HEADERS) - 1, "Lý do", f.header)
        for i, outcome in enumerate(other):
            row += 1
            reason = "; ".join(i.message for i in outcome.issues if i.severity in ("error", "info"))
            state = {"ignored": "Bỏ qua", "superseded": "Đã có tệp mới hơn"}.get(
                outcome.status, "Không xác định được đơn vị" if not outcome.unit else STATUS_WORDS["rejected"])
            sheet.set_row(row, _height(reason, 40))
            sheet.write_number(row, 0, i + 1, f.center)
            sheet.merge_range(row, 1, row, 3, state, f.text)
            sheet.write_string(row, 4, clip(outcome.name), f.text)
            sheet.write_string(row, 5, _when(outcome), f.text)
            sheet.merge_range(row, 6, row, len(STATUS_HEADERS) - 1, clip(reason), f.wrap)
            widths.see(4, outcome.name, maximum=80)  # "archive.zip/member.pdf" names run long
    widths.apply(sheet)
    _page_setup(sheet, header_rows=header_row + 1)
    sheet.freeze_panes(header_row + 1, 3)


def _height(text: str, width_chars: int) -> float:
    """Row height for wrapped text: LibreOffice does not grow rows of an .xlsx by itself."""
    lines = sum(max(1, -(-len(part) // width_chars)) for part in text.splitlines() or [""])
    return 16.5 * min(lines, 25)


def _when(outcome: FileOutcome) -> str:
    return modified_at(outcome.mtime).replace("T", " ")[:19]


# ---------------------------------------------------------------- Số liệu đơn vị

def _values_sheet(book, f: _Formats, c: Consolidation) -> None:
    sheet = _streamed_sheet(book, SHEET_VALUES)
    form = c.form
    headers = ["Mã đơn vị", "Tên đơn vị", "Năm", *[m.label for m in form.metrics], "Tệp", "Trang tính"]
    widths = _Widths()
    for col, title in enumerate(headers):
        sheet.write_string(0, col, title, f.header)
        widths.see(col, title, maximum=18 if 3 <= col < 3 + len(form.metrics) else 60)
    sheet.set_row(0, 64)
    row = 0
    names = {u.code: u.name for u in c.registry.units}
    metric_keys = form.metric_keys
    sheet.stream_from(1)
    for outcome in c.accepted():
        name = names.get(outcome.unit, outcome.unit)
        unit_cells = [(outcome.unit, f.text), (clip(name), f.text)]
        source_cells = [(clip(outcome.name), f.file), (clip(outcome.sheet), f.text)]
        for year in form.years:
            row += 1
            sheet.stream_row(row, 0, [*unit_cells, (year, f.center),
                                      *[(outcome.values[(year, metric)], f.number) for metric in metric_keys],
                                      *source_cells])
        widths.see(1, name)
        widths.see(3 + len(form.metrics), outcome.name, maximum=50)
    last_data_row = row
    for year in form.years:
        row += 1
        sheet.stream_row(row, 0, [("TỈNH", f.total), (f"Tổng toàn tỉnh {year}", f.total), (year, f.center),
                                  *[(c.totals[(year, metric)], f.number_bold) for metric in metric_keys]])
    sheet.autofilter(0, 0, max(last_data_row, 1), len(headers) - 1)
    widths.apply(sheet)
    _page_setup(sheet, header_rows=1)
    sheet.freeze_panes(1, 3)


# ---------------------------------------------------------------- Chỉ tiêu

QUOTA_HEADERS = ("Mã đơn vị", "Tên đơn vị", "Năm", "Chỉ tiêu Tỉnh đoàn giao", "Chỉ tiêu đơn vị báo cáo",
                 "Số được kết nạp Đảng", "Tỉ lệ hoàn thành")


def _quota_sheet(book, f: _Formats, c: Consolidation) -> None:
    sheet = _streamed_sheet(book, SHEET_QUOTAS)
    widths = _Widths()
    for col, title in enumerate(QUOTA_HEADERS):
        sheet.write_string(0, col, title, f.header)
        widths.see(col, title, maximum=16)
    sheet.set_row(0, 48)
    names = {u.code: u.name for u in c.registry.units}
    row = 0
    lines = c.quota_lines()
    sheet.stream_from(1)
    for line in lines:
        row += 1
        name = names.get(line.unit, line.unit)
        reported = f.number
        if line.reported is not None and line.allocated is not None and line.reported != line.allocated:
            reported = f.mismatch
        sheet.stream_row(row, 0, [(line.unit, f.text), (clip(name), f.text), (line.year, f.center),
                                  (line.allocated, f.number), (line.reported, reported), (line.admitted, f.number),
                                  (line.achievement, f.percent)])
        widths.see(1, name)
    last_unit_row = row
    province = c.province_quotas(lines)
    for year, figures in province.items():
        # Allocated, reported, admitted and the ratio all over the same units: the accepted ones with a quota.
        row += 1
        label = f"Toàn tỉnh {year}: {len(figures.covered)} đơn vị hợp lệ có chỉ tiêu"
        widths.see(1, label)
        sheet.stream_row(row, 0, [("TỈNH", f.total), (label, f.total), (year, f.center),
                                  (figures.allocated, f.number_bold), (figures.reported, f.number_bold),
                                  (figures.admitted, f.number_bold), (figures.ratio, f.percent_bold)])
    shown_apart = any(figures.allocated_all != figures.allocated for figures in province.values())
    for year, figures in province.items() if shown_apart else ():
        # Every unit's quota, shown apart under its own label: it is never divided by the admitted above.
        row += 1
        label = figures.allocated_all_label()
        widths.see(1, label)
        sheet.stream_row(row, 0, [(None, f.text), (label, f.text),
                                  (year, f.center), (figures.allocated_all, f.number), (None, f.text),
                                  (None, f.text), (None, f.text)])
    row += 1
    for note in coverage_notes(province):
        row += 1
        sheet.stream_row(row, 0, [(note, f.italic)])
    red = book.add_format({"bg_color": "#F8CBAD", "font_color": "#9C0006"})
    amber = book.add_format({"bg_color": "#FFE699", "font_color": "#7F6000"})
    green = book.add_format({"bg_color": "#C6EFCE", "font_color": "#006100"})
    span = (1, 6, row, 6)
    # Formula rules: a blank achievement (no accepted report) compares as 0 in a plain "<" rule.
    for criteria, colour in (("G2<0.8", red), ("AND(G2>=0.8,G2<1)", amber), ("G2>=1", green)):
        sheet.conditional_format(*span, {"type": "formula", "criteria": f"=AND(ISNUMBER(G2),{criteria})",
                                         "format": colour})
    sheet.autofilter(0, 0, max(last_unit_row, 1), len(QUOTA_HEADERS) - 1)
    widths.apply(sheet)
    _achievement_chart(book, sheet, f, c, lines, row + 3)
    _page_setup(sheet, header_rows=1)
    sheet.freeze_panes(1, 3)


def coverage_notes(province: dict) -> list[str]:
    """Which units the province ratios cover: one sentence for all years when it is the same, else one a year."""
    sentences = {year: figures.coverage for year, figures in province.items()}
    if len(set(sentences.values())) <= 1:
        return [f"{sentence}." for sentence in set(sentences.values())]
    return [f"Năm {year}: {sentence[:1].lower()}{sentence[1:]}." for year, sentence in sentences.items()]


def _achievement_chart(book, sheet, f: _Formats, c: Consolidation, lines, top: int) -> None:
    year = max(c.form.years)
    names = {u.code: u.short_name for u in c.registry.units}
    chart_lines = [line for line in lines if line.year == year and line.achievement is not None]
    # The chart's source sits in the name and achievement columns, so both are wide enough already;
    # it starts a printed page of its own so the chart is never cut in two.
    sheet.set_h_pagebreaks([top])
    sheet.write_string(top, 0, f"Tỉ lệ hoàn thành chỉ tiêu năm {year} theo đơn vị", f.bold)
    sheet.write_string(top + 1, 1, "Đơn vị", f.header)
    sheet.write_string(top + 1, 6, "Tỉ lệ hoàn thành", f.header)
    for i, line in enumerate(chart_lines):
        sheet.write_string(top + 2 + i, 1, names.get(line.unit, line.unit), f.text)
        sheet.write_number(top + 2 + i, 6, line.achievement, f.percent)
    if not chart_lines:
        sheet.write_string(top + 2, 1, "Chưa có đơn vị nào có số liệu hợp lệ.", f.italic)
        return
    chart = book.add_chart({"type": "bar"})
    last = top + 1 + len(chart_lines)
    chart.add_series({
        "name": f"Tỉ lệ hoàn thành {year}",
        "categories": [SHEET_QUOTAS, top + 2, 1, last, 1],
        "values": [SHEET_QUOTAS, top + 2, 6, last, 6],
        "data_labels": {"value": True, "num_format": "0%"},
        "fill": {"color": "#2F75B5"},
    })
    font = {"name": "Times New Roman"}
    chart.set_title({"name": f"Tỉ lệ hoàn thành chỉ tiêu kết nạp Đảng năm {year}",
                     "name_font": {**font, "size": 13, "bold": True}})
    chart.set_x_axis({"num_format": "0%", "min": 0, "major_gridlines": {"visible": True}, "num_font": font})
    chart.set_y_axis({"reverse": True, "interval_unit": 1, "num_font": {**font, "size": 9}})
    chart.set_legend({"none": True})
    # Room for every unit's label: LibreOffice hides category labels that would overlap.
    chart.set_size({"width": 760, "height": max(320, 38 * len(chart_lines) + 140)})
    sheet.insert_chart(last + 2, 1, chart)


# ---------------------------------------------------------------- discrepancies

DISCREPANCY_HEADERS = ("STT", "Ô", "Mức độ", "Nội dung", "Giá trị ghi", "Giá trị đúng / yêu cầu", "Mã lỗi")


def _write_issue_table(sheet, f: _Formats, issues: list[Issue], top: int, widths: _Widths,
                       with_unit: bool = False, names: dict[str, str] | None = None) -> int:
    headers = (("Mã đơn vị", "Tệp") if with_unit else ()) + DISCREPANCY_HEADERS
    for col, title in enumerate(headers):
        sheet.write_string(top, col, title, f.header)
        widths.see(col, title)
    row = top
    offset = 2 if with_unit else 0
    for i, issue in enumerate(issues):
        row += 1
        if with_unit:
            sheet.write_string(row, 0, issue.unit, f.text)
            sheet.write_string(row, 1, clip(issue.file), f.text)
            widths.see(1, issue.file, maximum=40)
        sheet.write_number(row, offset + 0, i + 1, f.center)
        sheet.write_string(row, offset + 1, issue.cell, f.center)
        sheet.write_string(row, offset + 2, SEVERITY_WORDS[issue.severity], f.text)
        sheet.write_string(row, offset + 3, clip(issue.message), f.wrap)
        sheet.set_row(row, _height(issue.message, 68))
        sheet.write_string(row, offset + 4, clip(issue.found), f.text)
        sheet.write_string(row, offset + 5, clip(issue.expected), f.text)
        sheet.write_string(row, offset + 6, issue.code, f.text)
        widths.see(offset + 2, SEVERITY_WORDS[issue.severity])
        widths.see(offset + 4, issue.found, maximum=30)
        widths.see(offset + 5, issue.expected, maximum=30)
        widths.see(offset + 6, issue.code)
    widths.widths[offset + 3] = 70
    return row


def _unit_discrepancy_sheet(book, f: _Formats, c: Consolidation, code: str, title: str) -> None:
    sheet = book.add_worksheet(title)
    unit = c.registry.unit(code)
    submission = c.submissions[code]
    sheet.write_url(0, 0, f"internal:'{SHEET_STATUS}'!A1", f.nav, string="← Về trang Tình trạng nộp")
    sheet.write_string(1, 0, "Đơn vị:", f.bold)
    sheet.write_string(1, 1, f"{unit.name} ({unit.code})", f.bold)
    sheet.write_string(2, 0, "Tệp:", f.bold)
    sheet.write_string(2, 1, clip(submission.name), f.plain)
    sheet.write_string(3, 0, "Trang tính:", f.bold)
    sheet.write_string(3, 1, clip(submission.sheet or "–"), f.plain)
    sheet.write_string(4, 0, "Kết luận:", f.bold)
    sheet.write_string(4, 1, STATUS_WORDS[unit_state(c, code)], f.bold)
    widths = _Widths()
    widths.see(0, "Trang tính:")
    last = _write_issue_table(sheet, f, _unit_issues(c, code), 6, widths)
    widths.apply(sheet)
    sheet.autofilter(6, 0, max(last, 7), len(DISCREPANCY_HEADERS) - 1)
    _page_setup(sheet, header_rows=7)
    sheet.freeze_panes(7, 0)


def _discrepancy_list_sheet(book, f: _Formats, c: Consolidation, per_unit_sheets: bool) -> None:
    sheet = book.add_worksheet(SHEET_DISCREPANCIES)
    sheet.write_url(0, 0, f"internal:'{SHEET_STATUS}'!A1", f.nav, string="← Về trang Tình trạng nộp")
    if per_unit_sheets:
        issues = _unattributed_issues(c)
        sheet.write_string(1, 0, "Sai lệch của các tệp chưa xác định được đơn vị", f.bold)
    else:
        issues = [i for u in c.registry.units for i in _unit_issues(c, u.code)] + _unattributed_issues(c)
        sheet.write_string(1, 0, "Sai lệch của tất cả đơn vị", f.bold)
    widths = _Widths()
    last = _write_issue_table(sheet, f, issues, 3, widths, with_unit=True)
    widths.apply(sheet)
    sheet.autofilter(3, 0, max(last, 4), len(DISCREPANCY_HEADERS) + 1)
    _page_setup(sheet, header_rows=4)
    sheet.freeze_panes(4, 0)


# ---------------------------------------------------------------- Thay đổi

def _changes_sheet(book, f: _Formats, c: Consolidation) -> None:
    sheet = book.add_worksheet(SHEET_CHANGES)
    sheet.write_string(0, 0, "NHỮNG THAY ĐỔI SO VỚI LẦN TỔNG HỢP TRƯỚC", f.bold)
    headers = ("STT", "Loại thay đổi", "Mã đơn vị", "Nội dung", "Năm", "Giá trị cũ", "Giá trị mới")
    for col, title in enumerate(headers):
        sheet.write_string(2, col, title, f.header)
    if not c.changes:
        sheet.write_string(3, 0, "Không có thay đổi.", f.italic)
    for i, change in enumerate(c.changes):
        row = 3 + i
        sheet.write_number(row, 0, i + 1, f.center)
        sheet.write_string(row, 1, KINDS.get(change.kind, change.kind), f.text)
        sheet.write_string(row, 2, change.unit, f.text)
        sheet.write_string(row, 3, clip(change.text), f.wrap)
        if change.year:
            sheet.write_number(row, 4, change.year, f.center)
        else:
            sheet.write_blank(row, 4, None, f.text)
        sheet.write_string(row, 5, change.old, f.text)
        sheet.write_string(row, 6, change.new, f.text)
    sheet.set_column(0, 0, 5)
    sheet.set_column(1, 1, 28)
    sheet.set_column(2, 2, 11)
    sheet.set_column(3, 3, 80)
    sheet.set_column(4, 6, 12)
    if c.changes:
        sheet.autofilter(2, 0, 2 + len(c.changes), len(headers) - 1)
    _page_setup(sheet, header_rows=3)
    sheet.freeze_panes(3, 0)

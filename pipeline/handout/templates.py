"""The copies of the form the province hands out: one per unit, plus a blank one.

Each unit's copy already names the unit and, when the registry allocates every year, carries the
quota locked, so the two things units most often get wrong (which unit they are, what their quota
was) are not theirs to type; without a full allocation the quota column is left for the unit to type,
and the instructions sheet says which of the two the copy does.
The numbers they do type are limited to whole numbers by Excel itself, the sheet is protected so
rows cannot be inserted above the table, and a very hidden token sheet lets the pipeline recognise
the copy even after the file and the unit line have been renamed.

The layout must stay where `read.locate_form` looks for it: the "Năm" header on row 8, the year rows
10 onwards, the unit line under the province line in column A.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pipeline.core.files import atomic_target, portable_name
from pipeline.core.form import FormDefinition
from pipeline.core.formatting import format_number
from pipeline.core.registry import Registry, Unit
from pipeline.core.textnorm import nfc
from pipeline.core.token import TOKEN_SHEET, token_rows

FORM_SHEET = "Biểu mẫu"
GUIDE_SHEET = "Hướng dẫn"
DEFAULT_OUT = Path("templates/bieu_mau")
DEFAULT_PROVINCE = "Bình Dương"
BLANK_UNIT_LINE = "BCH....."
NO_DEADLINE = "theo công văn của Tỉnh đoàn"

FONT = "Times New Roman"
INPUT_FILL = "#FFF2CC"  # light yellow: "type here"
FIXED_FILL = "#E7E6E6"  # light grey: filled in by the province, locked

HEADER_ROW = 8  # 1-based, as Excel shows it; the pipeline finds the form by these labels
FIRST_DATA_ROW = 10
FIRST_METRIC_COL = 2  # column C, 0-based

INPUT_TITLE = "Chỉ nhập số nguyên"
INPUT_MESSAGE = "Nhập số nguyên không âm, không ghi chữ, không để dấu chấm phẩy."
ERROR_TITLE = "Số liệu không hợp lệ"
ERROR_MESSAGE = ("Ô này chỉ nhận số nguyên không âm (0, 1, 2, …). "
                 "Không ghi chữ, số âm hay số thập phân; không có số liệu thì ghi 0.")

GUIDE_WIDTH = 80
GUIDE_CHARS_PER_LINE = 85  # of 12-point Times New Roman in a column GUIDE_WIDTH wide, with room to spare


# Characters Windows refuses in file names; unit names come from a hand-kept workbook.


@dataclass(frozen=True)
class _Layout:
    """Where things sit on the form sheet, derived from the form definition."""

    columns: dict[str, int]  # metric key → 0-based column
    last_col: int
    data_rows: dict[int, int]  # year → 0-based row
    signature_row: int  # 0-based
    quota: str  # the quota metric (role `quota`): filled in and locked when the registry allocates every year


def _layout(form: FormDefinition) -> _Layout:
    columns = {m.key: FIRST_METRIC_COL + i for i, m in enumerate(form.metrics)}
    data_rows = {year: FIRST_DATA_ROW - 1 + i for i, year in enumerate(form.years)}
    last_data = max(data_rows.values())
    return _Layout(columns=columns, last_col=max(columns.values()), data_rows=data_rows,
                   signature_row=last_data + 2, quota=form.roles.quota)


def format_deadline(text: str | None) -> str:
    """"2024-02-10" or "10/02/2024" → "10/02/2024"; None → the wording used when no date is set."""
    if text is None or not text.strip():
        return NO_DEADLINE
    text = text.strip()
    for parse in (date.fromisoformat, _parse_vietnamese_date):
        try:
            return parse(text).strftime("%d/%m/%Y")
        except ValueError:
            continue
    raise ValueError(f"Hạn nộp \"{text}\" không đúng dạng ngày (ví dụ 2024-02-10 hoặc 10/02/2024).")


def _parse_vietnamese_date(text: str) -> date:
    match = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", text)
    if not match:
        raise ValueError(text)
    day, month, year = (int(g) for g in match.groups())
    return date(year, month, day)


def unit_line(unit: Unit) -> str:
    """The line under the province line that names the unit, the way official letters print it."""
    return "BCH " + unit.name.upper()


def unit_file_name(unit: Unit) -> str:
    """"DT - Huyện đoàn Dầu Tiếng.xlsx": sorts by code, still readable in an email attachment list."""
    return portable_name(nfc(f"{unit.code} - {unit.name}"), ".xlsx", replacement="-", fallback=unit.code or "don_vi")


def blank_file_name(form: FormDefinition) -> str:
    return f"bieu_mau_{min(form.years)}_{max(form.years)}.xlsx"


def _report_year(form: FormDefinition, deadline: str | None) -> int:
    # The report covers past years and is signed the year it is due.
    if deadline and deadline.strip():
        return int(format_deadline(deadline)[-4:])
    return max(form.years) + 1


class _Formats:
    """The handful of cell styles the form uses, created once per workbook."""

    def __init__(self, workbook: Any) -> None:
        def make(**props: Any) -> Any:
            return workbook.add_format({"font_name": FONT, "font_size": 12, "valign": "vcenter", **props})

        self.org = make(align="center")
        self.org_bold = make(align="center", bold=True, text_wrap=True)
        self.party = make(align="center", bold=True, underline=1)
        self.unit_blank = make(align="center", bold=True, locked=False)
        self.rule = make(align="center", font_size=10)
        self.place_date = make(align="center", italic=True, locked=False)
        self.title = make(align="center", bold=True, font_size=13)
        self.subtitle = make(align="center", bold=True, text_wrap=True)
        self.period = make(align="center", bold=True, italic=True)
        self.note = make(italic=True, font_size=11)
        self.unit_note = make(italic=True, font_size=11, align="right")
        self.header = make(align="center", bold=True, text_wrap=True, border=1)
        self.number = make(align="center", border=1)
        self.year = make(align="center", border=1, bold=True)
        self.input = make(align="center", border=1, locked=False, bg_color=INPUT_FILL, num_format="#,##0")
        self.fixed = make(align="center", border=1, bg_color=FIXED_FILL, num_format="#,##0")
        self.sign_note = make(bold=True, italic=True)
        self.sign_small = make(font_size=11)
        self.sign_bold = make(align="center", bold=True)
        self.sign_hint = make(align="center", italic=True, font_size=11)
        self.signer = make(align="center", bold=True, locked=False)
        self.guide_title = make(bold=True, font_size=13, align="center")
        self.guide_head = make(bold=True)
        self.guide_text = make(text_wrap=True, valign="top")
        self.guide_strong = make(text_wrap=True, valign="top", bold=True)


def _validation(first_row: int, first_col: int, last_row: int, last_col: int) -> tuple[int, int, int, int, dict]:
    return (first_row, first_col, last_row, last_col, {
        "validate": "integer",
        "criteria": ">=",
        "value": 0,
        "ignore_blank": True,
        "input_title": INPUT_TITLE,
        "input_message": INPUT_MESSAGE,
        "error_title": ERROR_TITLE,
        "error_message": ERROR_MESSAGE,
        "error_type": "stop",
    })


def _write_form_sheet(workbook: Any, fmt: _Formats, form: FormDefinition, province: str,
                      unit: Unit | None, quotas: dict[int, int], report_year: int) -> None:
    ws = workbook.add_worksheet(FORM_SHEET)
    layout = _layout(form)
    last_col = layout.last_col
    half = last_col // 2  # the two heading blocks sit either side of one empty column

    texts = form.texts
    ws.merge_range(0, 0, 0, half - 1, texts.issuer_line(province), fmt.org)
    ws.merge_range(0, half + 1, 0, last_col, texts.organisation, fmt.party)
    line = unit_line(unit) if unit else BLANK_UNIT_LINE
    # The blank copy's unit types its own name over "BCH....."; a unit's copy keeps the registry's.
    ws.merge_range(1, 0, 1, half - 1, line, fmt.org_bold if unit else fmt.unit_blank)
    if len(line) > 34:
        ws.set_row(1, 32)  # long names wrap onto a second line inside the merged cell
    ws.merge_range(1, half + 1, 1, last_col, texts.form_place_date.format(year=report_year), fmt.place_date)
    ws.merge_range(2, 0, 2, half - 1, texts.mark, fmt.rule)  # the Đoàn's mark under the issuing body

    ws.merge_range(3, 0, 3, last_col, form.title, fmt.title)
    ws.merge_range(4, 0, 4, last_col, form.subtitle.format(province=province), fmt.subtitle)
    ws.set_row(4, 22)
    ws.merge_range(5, 0, 5, last_col, form.period, fmt.period)
    ws.merge_range(6, 0, 6, half + 1, f"Xem trang \"{GUIDE_SHEET}\" trước khi điền; "
                   "số liệu chỉ điền vào các ô nền vàng.", fmt.note)
    ws.merge_range(6, half + 2, 6, last_col, texts.unit_of_measure, fmt.unit_note)

    top, bottom = HEADER_ROW - 1, HEADER_ROW
    ws.merge_range(top, 0, bottom, 0, form.number_label, fmt.header)
    ws.merge_range(top, 1, bottom, 1, form.year_header, fmt.header)
    groups: dict[str, list[int]] = {}
    for metric in form.metrics:
        col = layout.columns[metric.key]
        if metric.group:
            groups.setdefault(metric.group, []).append(col)
            ws.write_string(bottom, col, metric.sublabel or metric.label, fmt.header)
        else:
            ws.merge_range(top, col, bottom, col, metric.label, fmt.header)
    for group, cols in groups.items():
        if len(cols) > 1:
            ws.merge_range(top, min(cols), top, max(cols), group, fmt.header)
        else:
            ws.write_string(top, cols[0], group, fmt.header)
    ws.set_row(top, 36)
    ws.set_row(bottom, 52)

    for number, (year, row) in enumerate(layout.data_rows.items(), start=1):
        ws.set_row(row, 24)
        ws.write_number(row, 0, number, fmt.number)
        ws.write_string(row, 1, form.year_label.format(year=year), fmt.year)
        for metric in form.metrics:
            col = layout.columns[metric.key]
            if metric.key == layout.quota and year in quotas:
                ws.write_number(row, col, quotas[year], fmt.fixed)
            else:
                ws.write_blank(row, col, None, fmt.input)
    first_row, last_row = min(layout.data_rows.values()), max(layout.data_rows.values())
    for first_col, last_col_run in _input_runs(layout, locked_quota=bool(quotas)):
        ws.data_validation(*_validation(first_row, first_col, last_row, last_col_run))

    sign = layout.signature_row
    for i, line in enumerate(texts.form_recipients):  # the heading ("Nơi nhận:"), then one line per recipient
        ws.write_string(sign + i, 0, line, fmt.sign_note if i == 0 else fmt.sign_small)
    for i, line in enumerate(texts.form_signature):
        ws.merge_range(sign + i, half + 1, sign + i, last_col, line, fmt.sign_bold)
    hint = sign + len(texts.form_signature)
    ws.merge_range(hint, half + 1, hint, last_col, texts.form_signature_hint, fmt.sign_hint)
    ws.merge_range(sign + 6, half + 1, sign + 6, last_col, "", fmt.signer)

    widths = [5, 10] + [_metric_width(m.label if not m.group else m.sublabel) for m in form.metrics]
    for col, width in enumerate(widths):
        ws.set_column(col, col, width)
    ws.hide_gridlines(2)
    ws.set_paper(9)  # A4
    ws.set_landscape()
    ws.set_margins(left=0.5, right=0.5, top=0.6, bottom=0.6)
    ws.center_horizontally()
    ws.print_area(0, 0, sign + 6, last_col)
    ws.fit_to_pages(1, 1)
    ws.protect("", {
        "select_locked_cells": True,
        "select_unlocked_cells": True,
        "format_columns": True,  # widening a column to read a long label is harmless
        "format_rows": True,
        "insert_rows": False,
        "insert_columns": False,
        "delete_rows": False,
        "delete_columns": False,
        "sort": False,
        "autofilter": False,
    })
    ws.activate()


def _metric_width(label: str) -> float:
    # Wide enough that each header label wraps onto at most three lines.
    return 16 if len(label) > 24 else 13


def _input_runs(layout: _Layout, locked_quota: bool) -> list[tuple[int, int]]:
    """Contiguous column runs of input cells, so each gets one validation range like C10:D12."""
    locked = {layout.columns[layout.quota]} if locked_quota and layout.quota in layout.columns else set()
    runs: list[tuple[int, int]] = []
    for col in sorted(layout.columns.values()):
        if col in locked:
            continue
        if runs and runs[-1][1] == col - 1:
            runs[-1] = (runs[-1][0], col)
        else:
            runs.append((col, col))
    return runs


def _quota_line(form: FormDefinition, unit: Unit | None, quotas: dict[int, int],
                allocated: dict[int, int]) -> str:
    """What the copy does with the quota column: `quotas` are the cells written (and locked), `allocated`
    what the registry holds for the unit (all of it, some years or none)."""
    column = f"Cột \"{form.metric(form.roles.quota).label}\""
    if unit is None:
        return f"{column} ghi đúng chỉ tiêu Ban Thường vụ Tỉnh đoàn phân bổ hằng năm."
    if quotas:
        return (f"{column} đã ghi sẵn chỉ tiêu Ban Thường vụ Tỉnh đoàn phân bổ cho đơn vị và được khóa; "
                f"nếu thấy chưa đúng, liên hệ {form.texts.department}, không tự sửa.")
    if allocated:
        known = ", ".join(f"năm {year}: {format_number(allocated[year])}" for year in sorted(allocated))
        missing = ", ".join(str(year) for year in form.years if year not in allocated)
        return (f"{column} để trống, không khóa: biểu mẫu chưa ghi sẵn chỉ tiêu vì Tỉnh đoàn mới phân bổ "
                f"chỉ tiêu cho đơn vị {known} (chưa có năm {missing}). Đơn vị tự ghi chỉ tiêu được giao của "
                "từng năm vào các ô nền vàng, năm đã phân bổ ghi đúng số trên; năm nào chưa được giao chỉ tiêu "
                "thì ghi 0.")
    return (f"{column} để trống, không khóa: biểu mẫu chưa ghi sẵn chỉ tiêu vì Tỉnh đoàn chưa phân bổ "
            "chỉ tiêu cho đơn vị. Đơn vị tự ghi chỉ tiêu Ban Thường vụ Tỉnh đoàn giao của từng năm vào các ô "
            "nền vàng; năm nào chưa được giao chỉ tiêu thì ghi 0.")


def _guide_lines(form: FormDefinition, unit: Unit | None, deadline: str | None, file_name: str,
                 quotas: dict[int, int] | None = None,
                 allocated: dict[int, int] | None = None) -> list[tuple[str, str]]:
    """(style, text) lines of the instructions sheet; `quotas` the quota cells the form sheet holds."""
    quotas = quotas or {}
    allocated = quotas if allocated is None else allocated
    quota_line = _quota_line(form, unit, quotas, allocated)
    lines: list[tuple[str, str]] = [("title", "HƯỚNG DẪN ĐIỀN VÀ GỬI BIỂU MẪU"), ("", "")]
    if unit:
        lines.append(("strong", f"Đơn vị: {unit.name} (mã {unit.code})"))
    else:
        lines.append(("strong", "Biểu mẫu trống: ghi tên đơn vị vào dòng \"BCH.....\" ở đầu trang "
                                f"\"{FORM_SHEET}\"."))
    lines += [
        ("strong", f"Hạn gửi báo cáo: {_deadline_sentence(deadline)}"),
        ("", ""),
        ("head", "1. Cách điền"),
        ("text", f"- Ở trang \"{FORM_SHEET}\", số liệu điền vào các ô nền vàng; các ô còn lại đã được khóa, "
                 "trừ dòng ngày tháng và họ tên người ký."),
        ("text", "- Mỗi ô ghi một số nguyên không âm (0, 1, 2, …): không ghi chữ, không ghi số thập phân, "
                 "không để dấu chấm, dấu phẩy. Chỉ tiêu nào không có số liệu thì ghi 0, không để trống."),
        ("text", f"- {quota_line}"),
        ("text", f"- Ghi ngày tháng ở ô \"{form.texts.form_place_date.format(year='').rstrip()}\" và họ tên "
                 f"đồng chí Bí thư dưới chữ \"{form.texts.form_signature[-1]}\"."),
        ("", ""),
        ("head", "2. Cách gửi"),
        ("text", "- Lưu tệp dưới dạng Excel (.xlsx)" + (f", giữ nguyên tên tệp \"{file_name}\"." if unit
                                                         else ".")),
        ("text", "- Không đổi tên, không xóa, không thêm trang tính; không chèn thêm dòng, cột vào biểu mẫu."),
        ("text", f"- Gửi tệp qua email về {form.texts.department} Tỉnh đoàn. Cần sửa số liệu thì gửi lại cả "
                 "tệp; Tỉnh đoàn lấy bản nhận sau cùng."),
        ("", ""),
        ("head", "3. Những điểm Tỉnh đoàn sẽ kiểm tra"),
    ]
    for rule in form.rules:  # one line per rule of the form, in its own words for the unit
        if rule.kind == "allocation" and unit is not None and not allocated:
            continue  # checked against the registry, which holds nothing for this unit
        lines.append(("text", f"- {form.explanation(rule)}"))
    return lines


def _deadline_sentence(deadline: str | None) -> str:
    formatted = format_deadline(deadline)
    return formatted if formatted == NO_DEADLINE else f"chậm nhất ngày {formatted}."


def _write_guide_sheet(workbook: Any, fmt: _Formats, form: FormDefinition, unit: Unit | None,
                       deadline: str | None, file_name: str, quotas: dict[int, int],
                       allocated: dict[int, int]) -> None:
    ws = workbook.add_worksheet(GUIDE_SHEET)
    ws.set_column(0, 0, GUIDE_WIDTH)
    styles = {"title": fmt.guide_title, "head": fmt.guide_head, "text": fmt.guide_text, "strong": fmt.guide_strong}
    for row, (style, text) in enumerate(_guide_lines(form, unit, deadline, file_name, quotas, allocated)):
        if text:
            ws.write_string(row, 0, text, styles[style])
        lines = -(-len(text) // GUIDE_CHARS_PER_LINE)
        if lines > 1:
            ws.set_row(row, 16 * lines + 2)  # neither Excel nor LibreOffice grows a row for wrapped text on open
    ws.hide_gridlines(2)
    ws.set_paper(9)
    ws.set_margins(left=0.6, right=0.6, top=0.7, bottom=0.7)
    ws.fit_to_pages(1, 1)
    ws.protect("", {"select_locked_cells": True, "select_unlocked_cells": True})


def _write_token_sheet(workbook: Any, unit: Unit, form: FormDefinition) -> None:
    ws = workbook.add_worksheet(TOKEN_SHEET)
    for row, (label, value) in enumerate(token_rows(unit.code, form.edition)):
        ws.write_string(row, 0, label)
        ws.write_string(row, 1, value)  # text, so "1" and codes like "007" survive any re-save
    ws.protect("")
    ws.very_hidden()


def _write_workbook(path: Path, form: FormDefinition, province: str, unit: Unit | None,
                    quotas: dict[int, int], deadline: str | None,
                    allocated: dict[int, int] | None = None) -> Path:
    import xlsxwriter

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    format_deadline(deadline)  # fail on a bad date before anything is written
    # Written beside the target and renamed into place, so a crash never leaves half a form to hand out.
    with atomic_target(path) as temp_name:
        workbook = xlsxwriter.Workbook(temp_name, {
            "strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False,
            # The sheet's own default font, so column widths measure the font actually printed; with
            # Calibri as default, a machine without Calibri (LibreOffice on Linux) widens every column.
            "default_format_properties": {"font_name": FONT, "font_size": 12},
            "default_column_width": 72, "default_row_height": 21,
        })
        title = f"{form.title} {form.subtitle.format(province=province)} {form.period}"
        workbook.set_properties({"title": title, "subject": unit.name if unit else "",
                                 "company": f"Tỉnh đoàn {province}", "author": f"Tỉnh đoàn {province}"})
        fmt = _Formats(workbook)
        _write_form_sheet(workbook, fmt, form, province, unit, quotas, _report_year(form, deadline))
        _write_guide_sheet(workbook, fmt, form, unit, deadline, path.name, quotas,
                           quotas if allocated is None else allocated)
        if unit is not None:
            _write_token_sheet(workbook, unit, form)
        workbook.close()
    return path


def write_unit_template(path: Path | str, form: FormDefinition, registry: Registry, unit: Unit | str,
                        deadline: str | None = None, province: str = DEFAULT_PROVINCE) -> Path:
    """One unit's copy: unit line, quotas and token filled in, input cells validated, sheet protected."""
    if isinstance(unit, str):
        unit = registry.unit(unit)
    allocated = {year: registry.quotas[(unit.code, year)] for year in form.years
                 if (unit.code, year) in registry.quotas}
    # A partial allocation cannot be half locked; the unit types the whole column instead, and the
    # instructions say so (and give the years the province did allocate).
    quotas = allocated if len(allocated) == len(form.years) else {}
    return _write_workbook(Path(path), form, province, unit, quotas, deadline, allocated)


def write_blank_template(path: Path | str, form: FormDefinition, province: str = DEFAULT_PROVINCE,
                         deadline: str | None = None) -> Path:
    """The generic copy: no unit, no token, every number (quota included) typed by the unit."""
    return _write_workbook(Path(path), form, province, None, {}, deadline)


def write_all(out_dir: Path | str, form: FormDefinition, registry: Registry, deadline: str | None = None,
              province: str = DEFAULT_PROVINCE, blank_dir: Path | str | None = None) -> list[Path]:
    """Every registry unit's copy into out_dir, then the blank copy into blank_dir (default out_dir).

    Returns the unit copies in registry order followed by the blank copy.
    """
    format_deadline(deadline)
    out_dir = Path(out_dir)
    written = [write_unit_template(out_dir / unit_file_name(unit), form, registry, unit, deadline, province)
               for unit in registry.units]
    blank_dir = Path(blank_dir) if blank_dir is not None else out_dir
    written.append(write_blank_template(blank_dir / blank_file_name(form), form, province, deadline))
    return written

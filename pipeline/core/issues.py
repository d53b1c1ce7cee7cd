"""The one `Issue` type every stage reports with, and the catalogue of pipeline-level messages.

Form-specific rules (and their messages) live in the form definition under `schemas/`; the codes
here concern files, structure, units and cell values, whatever the form edition.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal, TypedDict, Unpack

from pipeline.core.formatting import format_number
from pipeline.core.textnorm import printable

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")


class IssueTexts(TypedDict, total=False):
    """The text fields of an `Issue`, as keywords `Issue.at` may replace."""

    code: str
    message: str
    unit: str
    file: str
    sheet: str
    cell: str
    found: str
    expected: str


@dataclass(frozen=True, slots=True)
class Issue:
    code: str
    severity: Severity
    message: str
    unit: str = ""
    file: str = ""
    sheet: str = ""
    cell: str = ""
    found: str = ""
    expected: str = ""

    def __post_init__(self) -> None:
        # Every text of an issue may quote a submission (a sheet name, a cell, a file name): none may
        # carry a line break or control character into a CSV record, a workbook cell or a mail.
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            clean = printable(value)
            if clean is not value:
                object.__setattr__(self, name, clean)

    def at(self, **fields: Unpack[IssueTexts]) -> Issue:
        return replace(self, **fields)


_TEXT_FIELDS = tuple(f.name for f in fields(Issue) if f.name not in ("code", "severity"))

MAX_TEXT = 32_767  # the most characters an Excel cell holds


def clip_text(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip_issues(issues: list[Issue]) -> list[Issue]:
    """Issues whose texts fit a cell; each one that had to be cut is followed by a warning saying so."""
    clipped: list[Issue] = []
    for issue in issues:
        if len(issue.message) <= MAX_TEXT and len(issue.found) <= MAX_TEXT:
            clipped.append(issue)
            continue
        length = max(len(issue.message), len(issue.found))
        clipped.append(replace(issue, message=clip_text(issue.message), found=clip_text(issue.found)))
        clipped.append(make_issue("text_truncated", length=format_number(length), limit="32.767",
                                  sheet=issue.sheet, cell=issue.cell))
    return clipped


# code → (severity, Vietnamese message template). Templates use str.format fields.
CATALOGUE: dict[str, tuple[Severity, str]] = {
    # Files
    "file_empty": ("error", "Tệp rỗng (0 byte) — hãy lưu lại báo cáo và gửi lại."),
    "file_changed": ("error", "Tệp đã thay đổi trong lúc tổng hợp ({detail}) — bài nộp này chưa được đọc; nếu tệp "
                              "vẫn là báo cáo của đơn vị, lần tổng hợp sau sẽ đọc lại, nếu không hãy gửi lại tệp."),
    "file_encrypted": ("error", "Tệp có mật khẩu — hãy gỡ mật khẩu và gửi lại."),
    "file_not_spreadsheet": (
        "error",
        "Tệp không phải bảng tính ({kind}) dù mang đuôi {extension} — hãy mở biểu mẫu bằng Excel, "
        "lưu dạng .xlsx và gửi lại.",
    ),
    "file_unreadable": (
        "error",
        "Không đọc được tệp, có thể tệp bị hỏng hoặc tải về chưa hết ({detail}) — hãy mở lại bằng "
        "Excel, lưu và gửi lại.",
    ),
    "file_html": (
        "error",
        "Tệp mang đuôi {extension} nhưng thực chất là trang web (HTML), không phải bảng tính — hãy mở "
        "bằng Excel, chọn Lưu thành (Save As) dạng .xlsx rồi gửi lại.",
    ),
    "file_text": (
        "error",
        "Tệp mang đuôi {extension} nhưng chỉ là văn bản thô hoặc CSV, không phải bảng tính — hãy điền "
        "vào biểu mẫu Excel và gửi lại.",
    ),
    "container_unreadable": (
        "error",
        "Không mở được tệp nén hoặc thư đã lưu ({detail}) — hãy gửi lại các tệp báo cáo đính kèm trực tiếp.",
    ),
    "container_too_many": (
        "error",
        "Tệp chứa quá nhiều tệp con ({count}, tối đa {limit}), không phải một bài nộp báo cáo — hãy gửi "
        "riêng tệp biểu mẫu.",
    ),
    "container_too_deep": (
        "error",
        "Tệp nén lồng nhau quá nhiều lớp (tối đa {limit}) — hãy gửi trực tiếp tệp biểu mẫu.",
    ),
    "container_empty": (
        "error",
        "Tệp nén hoặc thư không có tệp đính kèm nào là báo cáo{skipped} — hãy đính kèm tệp biểu mẫu và gửi lại.",
    ),
    "document_needs_converter": (
        "error",
        "Tệp Word dạng cũ ({extension}) chỉ đọc được khi máy tổng hợp có LibreOffice — hãy lưu biểu mẫu "
        "dạng .docx hoặc .xlsx rồi gửi lại.",
    ),
    "document_unconvertible": (
        "error",
        "Không chuyển đổi được tệp {extension} để đọc (LibreOffice báo lỗi hoặc quá thời gian) — hãy mở "
        "bằng Word, lưu dạng .docx hoặc .xlsx rồi gửi lại.",
    ),
    "signed_copy": (
        "info",
        "Bản chụp/bản ký ({kind}) kèm theo báo cáo: được ghi nhận là bản có chữ ký, đóng dấu của đơn vị, "
        "không thay cho biểu mẫu.",
    ),
    "not_a_report": (
        "info",
        "Tệp {kind} không phải biểu mẫu báo cáo và không gắn được với đơn vị nào — được ghi nhận, không tổng hợp.",
    ),
    "legacy_font": (
        "info",
        "Tệp dùng phông chữ cũ ({encoding}); chữ đã được chuyển sang Unicode để đọc. Lần sau hãy dùng phông "
        "Unicode (Times New Roman).",
    ),
    "file_too_large": (
        "error",
        "Tệp quá lớn ({size}, tối đa {limit}) so với một biểu mẫu báo cáo — hãy xoá các trang, hình ảnh "
        "thừa rồi gửi lại.",
    ),
    "zip_bomb": (
        "error",
        "Tệp có dung lượng giải nén bất thường ({size}), có thể là tệp độc hại hoặc bị hỏng — hệ thống "
        "không mở tệp này; hãy lưu lại biểu mẫu và gửi lại.",
    ),
    "zip_too_many_entries": (
        "error",
        "Tệp chứa quá nhiều thành phần ({count}, tối đa {limit}), không phải biểu mẫu thông thường — "
        "hãy gửi lại đúng tệp biểu mẫu.",
    ),
    "xml_dtd": (
        "error",
        "Tệp chứa khai báo XML (DOCTYPE/ENTITY) mà bảng tính thật không có, có thể là tệp độc hại — hệ "
        "thống không mở tệp này; hãy lưu lại biểu mẫu bằng Excel và gửi lại.",
    ),
    "sheet_too_large": (
        "error",
        "Trang tính \"{sheet}\" có kích thước bất thường ({extent}) nên không được đọc — hãy xoá các ô "
        "thừa ở xa bảng số liệu, lưu lại và gửi.",
    ),
    "reader_crashed": (
        "error",
        "Tệp làm trình đọc bảng tính dừng đột ngột ({detail}) — tệp có thể bị hỏng; hãy mở bằng Excel, "
        "lưu lại và gửi.",
    ),
    "reader_timeout": (
        "error",
        "Đọc tệp quá {seconds} giây nên đã dừng — tệp có thể bị hỏng hoặc quá lớn; hãy lưu lại biểu mẫu "
        "và gửi.",
    ),
    "reader_out_of_memory": (
        "error",
        "Đọc tệp cần quá nhiều bộ nhớ nên đã dừng — tệp có thể bị hỏng hoặc chứa dữ liệu thừa; hãy lưu "
        "lại biểu mẫu và gửi.",
    ),
    "file_ignored": ("info", "Bỏ qua tệp: {reason}."),
    "sheet_superseded": ("info", "Trang \"{newer}\" của cùng tệp cũng là báo cáo của đơn vị này và được tổng hợp "
                                 "thay cho trang này."),
    "unit_twice_in_workbook": ("warning", "Tệp có hai trang báo cáo của cùng một đơn vị (\"{older}\" và \"{sheet}\"); "
                                          "trang sau được tổng hợp — hãy xoá trang thừa."),
    "file_superseded": ("info", "Đã có tệp mới hơn của đơn vị ({newer}); tệp này không được tổng hợp."),
    # Structure
    "form_not_found": (
        "error",
        "Không tìm thấy bảng số liệu theo biểu mẫu (dòng tiêu đề có cột \"Năm\", \"Tổng số đoàn viên\", "
        "\"Số đoàn viên ưu tú\"…) trên các trang tính đang hiển thị.",
    ),
    "column_missing": ("error", "Biểu mẫu thiếu cột \"{label}\"."),
    "year_missing": ("error", "Thiếu dòng số liệu năm {year}."),
    "year_duplicate": ("error", "Dòng năm {year} bị lặp lại (đã có ở dòng {first_row})."),
    "year_unexpected": ("info", "Dòng \"{label}\" không thuộc các năm của biểu mẫu nên được bỏ qua."),
    "row_ignored": ("info", "Dòng {row} có số liệu nhưng không ghi năm nên được bỏ qua."),
    # Units
    "unit_unknown": (
        "error",
        "Không xác định được đơn vị gửi báo cáo (dòng đơn vị: \"{unit_line}\", tên tệp: \"{file}\") — "
        "hãy ghi rõ tên đơn vị dưới dòng BCH ĐOÀN TỈNH rồi gửi lại.",
    ),
    "unit_ambiguous": (
        "error",
        "Không xác định được đơn vị: \"{text}\" khớp với nhiều đơn vị ({candidates}) — hãy ghi đầy đủ "
        "tên đơn vị.",
    ),
    "unit_name_conflict": (
        "info",
        "Dòng đơn vị ghi \"{unit_line}\" nhưng tên tệp gợi ý đơn vị khác ({other}); hệ thống lấy theo "
        "dòng đơn vị.",
    ),
    "unit_from_sender": (
        "info",
        "Dòng đơn vị chưa ghi tên đơn vị; hệ thống xác định đơn vị theo địa chỉ thư đã gửi ({sender}) — lần "
        "sau hãy ghi rõ tên đơn vị.",
    ),
    "unit_from_file_name": (
        "info",
        "Dòng đơn vị chưa ghi tên đơn vị (\"{unit_line}\"); hệ thống xác định đơn vị theo tên tệp — lần sau "
        "hãy ghi rõ tên đơn vị.",
    ),
    "unit_missing": ("warning", "Đơn vị chưa nộp báo cáo."),
    "late_submission": ("warning", "Nộp muộn: tệp nhận lúc {received}, sau hạn nộp {deadline}."),
    "text_truncated": (
        "warning",
        "Nội dung ô dài {length} ký tự, vượt giới hạn {limit} ký tự của một ô Excel nên đã được cắt bớt.",
    ),
    "token_invalid": (
        "warning",
        "Mã nhận diện đơn vị trong tệp không hợp lệ ({reason}); hệ thống xác định đơn vị theo tên đơn vị và "
        "tên tệp.",
    ),
    # Values
    "value_blank": ("warning", "Ô {cell} {written} nên được tính là 0."),
    "value_with_unit_word": ("warning", "Ô {cell} ghi \"{found}\"; đã đọc là số {value} — lần sau chỉ ghi số."),
    "value_not_number": ("error", "Ô {cell} ghi \"{found}\", không phải là số — hãy nhập số nguyên."),
    "value_fraction": ("error", "Ô {cell} có số lẻ ({found}) — số liệu phải là số nguyên."),
    "value_too_large": ("error", "Ô {cell} có giá trị quá lớn ({found}) — hãy kiểm tra lại số liệu."),
    "value_formula_error": ("error", "Ô {cell} có công thức báo lỗi ({found}) — hãy sửa công thức."),
    "formula_no_value": (
        "error",
        "Ô {cell} chứa công thức chưa được tính ({found}) — hãy mở tệp bằng Excel hoặc LibreOffice, "
        "lưu lại rồi gửi.",
    ),
}


def make_issue(code: str, /, **fields: object) -> Issue:
    """Build an Issue from the catalogue; location keywords go to the Issue, the rest fill the message."""
    severity, template = CATALOGUE[code]
    location: dict[str, str] = {
        k: str(fields.pop(k)) for k in ("unit", "file", "sheet", "cell", "found", "expected") if k in fields
    }
    message_fields: dict[str, object] = {**location, **{k: v for k, v in fields.items()}}
    return Issue(code=code, severity=severity, message=template.format(**message_fields), **location)

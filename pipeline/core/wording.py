"""Words and names the output files share: statuses, severities, which notes a unit is told about,
texts clipped to what a cell holds, and legal sheet names.

Used by the workbook, the feedback copies and the mails; imports nothing of theirs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pipeline.core.issues import Issue, clip_text

STATUS_WORDS = {
    "ok": "Đã nhận – hợp lệ",
    "warnings": "Có cảnh báo",
    "rejected": "Trả lại – cần sửa",
    "unreadable": "Đã gửi, không đọc được – cần gửi lại",
    "scan_only": "Chỉ gửi bản chụp/bản ký – cần gửi biểu mẫu",
    "missing": "Chưa nộp",
}
SEVERITY_WORDS = {"error": "Lỗi", "warning": "Cảnh báo", "info": "Thông tin"}

# Notes (severity "info") worth showing a unit beside its errors and warnings; other notes are routine.
NOTEWORTHY_INFO = frozenset({"unit_name_conflict", "unit_from_file_name", "year_unexpected", "row_ignored"})

_ILLEGAL_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def listed(issues: Iterable[Issue]) -> list[Issue]:
    """The issues a unit is told about: everything but routine notes."""
    return [i for i in issues if i.severity != "info" or i.code in NOTEWORTHY_INFO]


def clip(text: str) -> str:
    """At most what one cell holds (see issues.clip_text)."""
    return clip_text(text)


def sheet_title(base: str, taken: set[str]) -> str:
    """A legal, unique sheet name of at most 31 characters (Excel compares names case-insensitively);
    added to `taken`."""
    cleaned = _ILLEGAL_SHEET_CHARS.sub("-", base).strip("'").strip() or "Trang"
    candidate = cleaned[:31]
    counter = 2
    while candidate.casefold() in {t.casefold() for t in taken}:
        suffix = f" ({counter})"
        candidate = cleaned[: 31 - len(suffix)] + suffix
        counter += 1
    taken.add(candidate)
    return candidate

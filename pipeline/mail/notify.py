"""The nightly report mail and the per-unit feedback mails: build, size-check, send, or write as .eml.

Sending is built for an unattended job whose ledger must never send a message twice: a failure is
retried only while the server cannot yet hold the complete message, and an error that leaves the
outcome unknown (or the message already delivered to part of the recipients) says so through
`MailError.resend_safe`, so the caller does not queue it again.
"""

from __future__ import annotations

import base64
import copy
import html
import io
import logging
import re
import smtplib
import socket
import ssl
import sys
import textwrap
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy as email_policy
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.utils import formataddr, format_datetime, getaddresses
from pathlib import Path
from typing import TYPE_CHECKING, cast

from pipeline.core.files import write_file_atomic
from pipeline.core.formatting import format_number, format_percent

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

log = logging.getLogger(__name__)

SECURITY_MODES = ("none", "starttls", "ssl")
SUBJECT_TAG = "[Tổng hợp PTĐ]"
SENDER_BODY = "Ban Tổ chức – Kiểm tra Tỉnh đoàn"

# Chosen from the extension rather than `mimetypes`, whose answer depends on the host's mime.types.
_MIME_TYPES = {
    ".xlsx": ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ".xlsm": ("application", "vnd.ms-excel.sheet.macroEnabled.12"),
    ".xls": ("application", "vnd.ms-excel"),
    ".ods": ("application", "vnd.oasis.opendocument.spreadsheet"),
    ".csv": ("text", "csv"),
    ".pdf": ("application", "pdf"),
    ".zip": ("application", "zip"),
}
_MESSAGE_ID = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_FILENAME_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]')
_CRLF = b"\r\n"


# --------------------------------------------------------------------------------------------- errors


class MailError(Exception):
    """A mail could not be built or sent; `str()` is a Vietnamese sentence for the staff.

    `resend_safe` is False when sending again could deliver a second copy: the server may have
    accepted the message (`uncertain`), or some recipients already received it (`delivered_to`).
    """

    def __init__(self, message: str, *, code: int | None = None, reply: str = "", attempts: int = 0,
                 delivered_to: Sequence[str] = (), uncertain: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.reply = reply
        self.attempts = attempts
        self.delivered_to = tuple(delivered_to)
        self.uncertain = uncertain

    @property
    def resend_safe(self) -> bool:
        return not self.uncertain and not self.delivered_to


class MailTooLarge(MailError):
    """The serialized message exceeds the size the mail server accepts."""

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class MailConfigError(MailError, ValueError):
    """The settings or an address cannot be used; nothing was sent."""


# ------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class MailSettings:
    host: str = ""
    port: int = 587
    security: str = "starttls"  # "none" | "starttls" | "ssl"
    user: str = ""
    password: str = field(default="", repr=False)  # kept out of repr so tracebacks and logs never show it
    sender: str = ""
    to: Sequence[str] = ()
    cc: Sequence[str] = ()
    max_bytes: int = 20_000_000  # 0 or less: no limit
    retries: int = 3  # attempts in all, at least 1
    backoff_seconds: float = 1.0
    timeout_seconds: float = 30.0
    ca_file: str = ""  # PEM bundle for a server whose certificate an internal authority signed

    def __post_init__(self) -> None:
        security = str(self.security).strip().lower()
        if security not in SECURITY_MODES:
            raise MailConfigError(f"Cấu hình thư: security phải là \"none\", \"starttls\" hoặc \"ssl\" "
                                  f"(đang là {self.security!r}).")
        object.__setattr__(self, "security", security)
        object.__setattr__(self, "to", _entries(self.to))
        object.__setattr__(self, "cc", _entries(self.cc))
        if not 0 < int(self.port) < 65536:
            raise MailConfigError(f"Cấu hình thư: cổng {self.port!r} không hợp lệ.")
        if int(self.retries) < 1:
            raise MailConfigError("Cấu hình thư: retries (số lần thử gửi) phải từ 1 trở lên.")
        if float(self.backoff_seconds) < 0 or float(self.timeout_seconds) <= 0:
            raise MailConfigError("Cấu hình thư: backoff_seconds không được âm và timeout_seconds phải lớn hơn 0.")
        if len(_addresses([self.sender], "người gửi (sender)", required=True)) != 1:
            raise MailConfigError(f"Cấu hình thư: sender phải là đúng một địa chỉ (đang là {self.sender!r}).")
        _addresses(self.to, "người nhận (to)")
        _addresses(self.cc, "người nhận bản sao (cc)")

    @property
    def sender_address(self) -> str:
        return _addresses([self.sender], "người gửi (sender)", required=True)[0].addr_spec


def _entries(value: str | Iterable[str]) -> tuple[str, ...]:
    # A bare string would otherwise be iterated character by character.
    items = [value] if isinstance(value, str) else list(value)
    return tuple(str(item).strip() for item in items if str(item).strip())


def _addresses(entries: Iterable[str], what: str, required: bool = False) -> list[Address]:
    """Parse "a@x", "Tên <a@x>", "a@x; b@y" entries; raise MailConfigError naming the bad one."""
    found: list[Address] = []
    for entry in entries:
        entry = str(entry)
        if "\r" in entry or "\n" in entry:
            raise MailConfigError(f"Địa chỉ {what} không hợp lệ: {entry!r}.")
        # Registry cells often separate several addresses with ";", which getaddresses does not know;
        # inside a quoted display name it is just a character.
        listed = entry if '"' in entry else entry.replace(";", ",")
        parsed = [(name, addr) for name, addr in getaddresses([listed]) if name or addr]
        # Newer getaddresses returns ("", "") for text it cannot parse rather than raising.
        if not parsed and entry.strip(" ,;"):
            raise MailConfigError(f"Địa chỉ {what} không hợp lệ: {entry!r}.")
        for name, addr in parsed:
            local, _, domain = addr.rpartition("@")
            if (not local or not domain or not addr.isascii() or any(c.isspace() for c in addr)
                    or "@" in local or not re.fullmatch(r"[A-Za-z0-9.-]+", domain)):
                raise MailConfigError(f"Địa chỉ {what} không hợp lệ: {entry!r}.")
            found.append(Address(display_name=_clean(name), addr_spec=addr))
    if required and not found:
        raise MailConfigError(f"Cấu hình thư thiếu địa chỉ {what}.")
    return found


# ------------------------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class Summary:
    """What one run's report mail says; every text is shown to the reader as is (and escaped in HTML)."""

    province: str
    run_name: str
    created: datetime
    units_total: int
    units_received: int
    units_accepted: int
    units_rejected: int
    units_missing: Sequence[str] = ()
    rejected: Sequence[tuple[str, str, str]] = ()  # (unit code, unit name, short reason such as "1 lỗi")
    totals: Mapping[int, Mapping[str, int | None]] = field(default_factory=dict)  # year → metric → value
    metric_labels: Mapping[str, str] = field(default_factory=dict)  # metric → Vietnamese label, in form order
    # year → (allocated, admitted), or (allocated, admitted, ratio, note) with the ratio as computed over
    # the same units as both numbers and a note saying which units those are (shown after the ratio)
    quota: Mapping[int, tuple[int | None, int | None] | tuple[int | None, int | None, float | None, str]] = \
        field(default_factory=dict)
    changes: Sequence[str] = ()
    late: Sequence[str] = ()


def _megabytes(size: int) -> str:
    # Decimal megabytes, as mail providers state their limits; small limits keep enough digits to differ.
    value = f"{size / 1_000_000:.{1 if size >= 1_000_000 else 3}f}"
    return value.rstrip("0").rstrip(".").replace(".", ",") if "." in value else value


def _clean(text: object) -> str:
    """One line of user-supplied text: NFC (so lengths line up), no control characters."""
    return " ".join(_CONTROL.sub(" ", unicodedata.normalize("NFC", str(text))).split())


def subject_for(summary: Summary) -> str:
    return (f"{SUBJECT_TAG} {_clean(summary.province)} – {summary.created:%d/%m/%Y} – "
            f"{summary.units_received}/{summary.units_total} đơn vị đã nộp")


def _metric_keys(summary: Summary) -> list[str]:
    keys = list(summary.metric_labels)
    for values in summary.totals.values():
        keys.extend(k for k in values if k not in keys)
    return keys


def _quota_rows(summary: Summary) -> list[tuple[str, str, str, str]]:
    rows = []
    for year in sorted(summary.quota):
        entry = summary.quota[year]
        allocated, admitted = entry[0], entry[1]
        value: float | None
        if len(entry) > 2:
            _, _, value, note = entry
        else:
            value = admitted / allocated if allocated and admitted is not None else None
            note = ""
        note = _clean(note) if note else ""
        shown = format_percent(value) if value is not None else ""
        if shown and note:
            ratio = f"{shown} – {note}"
        elif shown or note:
            ratio = shown or note
        else:
            ratio = "–" if allocated else "chưa giao chỉ tiêu"
        rows.append((str(year), format_number(allocated), format_number(admitted), ratio))
    return rows


def _plain_table(header: Sequence[str], rows: Sequence[Sequence[str]], label_width: int = 40) -> list[str]:
    widths = [min(label_width, max(len(r[0]) for r in [header, *rows]))]
    widths += [max(len(r[i]) for r in [header, *rows]) for i in range(1, len(header))]
    lines = []
    for row in [header, *rows]:
        label = textwrap.wrap(row[0], widths[0]) or [""]
        lines.extend(label[:-1])
        cells = [label[-1].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return lines


def _text_body(summary: Summary, attachment_name: str | None) -> str:
    s = summary
    missing = [_clean(n) for n in s.units_missing]
    late = [_clean(n) for n in s.late]
    lines = [
        f"TỔNG HỢP BÁO CÁO PHÁT TRIỂN ĐẢNG – TỈNH ĐOÀN {_clean(s.province).upper()}",
        f"Lần tổng hợp {_clean(s.run_name)}, lúc {s.created:%H:%M} ngày {s.created:%d/%m/%Y}.",
        "",
        "1. TÌNH HÌNH NỘP BÁO CÁO",
        f"- Đã nộp: {s.units_received}/{s.units_total} đơn vị "
        f"(hợp lệ: {s.units_accepted}, trả lại: {s.units_rejected}).",
        f"- Chưa nộp ({len(missing)}): {'; '.join(missing)}." if missing else "- Chưa nộp: không có.",
    ]
    if s.rejected:
        lines.append(f"- Trả lại để sửa ({len(s.rejected)}):")
        lines += [f"    + {_clean(name)} ({_clean(code)}): {_clean(reason)}" for code, name, reason in s.rejected]
    else:
        lines.append("- Trả lại để sửa: không có.")
    lines.append(f"- Nộp sau hạn ({len(late)}): {'; '.join(late)}." if late else "- Nộp sau hạn: không có.")

    lines += ["", "2. SỐ LIỆU TOÀN TỈNH (chỉ tính các báo cáo hợp lệ)"]
    years = sorted(s.totals)
    if years:
        rows = [[_clean(s.metric_labels.get(k, k))] + [format_number(s.totals[y].get(k)) for y in years]
                for k in _metric_keys(s)]
        lines += _plain_table(["Nội dung"] + [f"Năm {y}" for y in years], rows)
    else:
        lines.append("Chưa có số liệu.")

    lines += ["", "3. THỰC HIỆN CHỈ TIÊU KẾT NẠP ĐẢNG VIÊN"]
    quota = _quota_rows(s)
    if quota:
        lines += _plain_table(["Năm", "Chỉ tiêu", "Đã kết nạp", "Tỉ lệ đạt"], quota, label_width=10)
    else:
        lines.append("Chưa có chỉ tiêu.")

    lines += ["", "4. THAY ĐỔI SO VỚI LẦN TỔNG HỢP TRƯỚC"]
    changes = [_clean(c) for c in s.changes if _clean(c)]
    lines += [f"- {c}" for c in changes] if changes else ["Không có thay đổi so với lần tổng hợp trước."]

    lines += ["", _attachment_sentence(s, attachment_name), "", "-- ",
              "Thư được gửi tự động sau mỗi lần tổng hợp."]
    return "\n".join(lines) + "\n"


def _attachment_sentence(summary: Summary, attachment_name: str | None) -> str:
    if attachment_name:
        return f"Tệp đính kèm: {attachment_name} (bảng tổng hợp toàn tỉnh)."
    return (f"Tệp tổng hợp không được gửi kèm thư này; xem trong thư mục kết quả của lần tổng hợp "
            f"{_clean(summary.run_name)}.")


def _html_body(summary: Summary, attachment_name: str | None) -> str:
    s = summary
    e = lambda text: html.escape(_clean(text), quote=True)  # noqa: E731 - every user text goes through here
    cell = 'style="border:1px solid #999;padding:3px 8px;'
    th = f'<th {cell}background:#e8eef7;text-align:center">'
    td_left, td_right = f'<td {cell}text-align:left">', f'<td {cell}text-align:right">'
    table = '<table style="border-collapse:collapse;font-size:13px;margin:4px 0 8px 0">'

    def names(items: Sequence[str]) -> str:
        return "; ".join(e(n) for n in items)

    parts = [
        "<!DOCTYPE html>",
        f'<html lang="vi"><head><meta charset="utf-8"><title>{e(subject_for(s))}</title></head>',
        '<body style="font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#1a1a1a">',
        f'<h2 style="font-size:17px;margin:0 0 4px 0">Tổng hợp báo cáo phát triển đảng – Tỉnh đoàn '
        f"{e(s.province)}</h2>",
        f"<p style=\"margin:0 0 12px 0\">Lần tổng hợp <b>{e(s.run_name)}</b>, lúc {s.created:%H:%M} ngày "
        f"{s.created:%d/%m/%Y}.</p>",
        '<h3 style="font-size:15px;margin:12px 0 4px 0">1. Tình hình nộp báo cáo</h3><ul>',
        f"<li>Đã nộp: <b>{s.units_received}/{s.units_total}</b> đơn vị (hợp lệ: {s.units_accepted}, "
        f"trả lại: {s.units_rejected}).</li>",
        f"<li>Chưa nộp ({len(s.units_missing)}): {names(s.units_missing)}.</li>" if s.units_missing
        else "<li>Chưa nộp: không có.</li>",
    ]
    if s.rejected:
        parts.append(f"<li>Trả lại để sửa ({len(s.rejected)}):<ul>")
        parts += [f"<li>{e(name)} ({e(code)}): {e(reason)}</li>" for code, name, reason in s.rejected]
        parts.append("</ul></li>")
    else:
        parts.append("<li>Trả lại để sửa: không có.</li>")
    parts.append(f"<li>Nộp sau hạn ({len(s.late)}): {names(s.late)}.</li>" if s.late
                 else "<li>Nộp sau hạn: không có.</li>")
    parts.append("</ul>")

    parts.append('<h3 style="font-size:15px;margin:12px 0 4px 0">2. Số liệu toàn tỉnh '
                 '<span style="font-weight:normal">(chỉ tính các báo cáo hợp lệ)</span></h3>')
    years = sorted(s.totals)
    if years:
        parts.append(table + "<tr>" + th + "Nội dung</th>" + "".join(f"{th}Năm {y}</th>" for y in years) + "</tr>")
        for key in _metric_keys(s):
            parts.append("<tr>" + td_left + e(s.metric_labels.get(key, key)) + "</td>"
                         + "".join(td_right + format_number(s.totals[y].get(key)) + "</td>" for y in years)
                         + "</tr>")
        parts.append("</table>")
    else:
        parts.append("<p>Chưa có số liệu.</p>")

    parts.append('<h3 style="font-size:15px;margin:12px 0 4px 0">3. Thực hiện chỉ tiêu kết nạp đảng viên</h3>')
    quota = _quota_rows(s)
    if quota:
        parts.append(table + "<tr>" + "".join(f"{th}{h}</th>" for h in ("Năm", "Chỉ tiêu", "Đã kết nạp",
                                                                          "Tỉ lệ đạt")) + "</tr>")
        parts += ["<tr>" + td_left + e(r[0]) + "</td>" + "".join(td_right + e(c) + "</td>" for c in r[1:]) + "</tr>"
                  for r in quota]
        parts.append("</table>")
    else:
        parts.append("<p>Chưa có chỉ tiêu.</p>")

    parts.append('<h3 style="font-size:15px;margin:12px 0 4px 0">4. Thay đổi so với lần tổng hợp trước</h3>')
    changes = [c for c in s.changes if _clean(c)]
    parts.append("<ul>" + "".join(f"<li>{e(c)}</li>" for c in changes) + "</ul>" if changes
                 else "<p>Không có thay đổi so với lần tổng hợp trước.</p>")
    parts += [f"<p>{e(_attachment_sentence(s, attachment_name))}</p>",
              '<p style="color:#666;font-size:12px">Thư được gửi tự động sau mỗi lần tổng hợp.</p>',
              "</body></html>"]
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------------------------------ building


def _new_message(settings: MailSettings, subject: str, to: Sequence[Address], cc: Sequence[Address],
                 message_id: str, date: datetime | None) -> EmailMessage:
    message_id = message_id.strip()
    if not _MESSAGE_ID.fullmatch(message_id):
        raise MailConfigError(f"Message-ID không hợp lệ: {message_id!r} (cần dạng <phần-riêng@tên-miền>).")
    message = EmailMessage(policy=email_policy.SMTP)
    subject = _clean(subject)
    if subject.isascii():
        message["Subject"] = subject
    else:
        message.set_raw("Subject", _folded("Subject", _encoded_words(subject)))
    message.set_raw("From", _address_field("From", _addresses([settings.sender], "người gửi (sender)",
                                                               required=True)[:1]))
    if to:
        message.set_raw("To", _address_field("To", to))
    if cc:
        message.set_raw("Cc", _address_field("Cc", cc))
    message["Date"] = format_datetime(date if date and date.tzinfo else (date or datetime.now()).astimezone())
    message["Message-ID"] = message_id
    # Keeps vacation responders and Exchange out-of-office replies from answering a nightly robot.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    return message


# Headers with non-ASCII text are encoded here rather than by the email package: its folder (3.11) can
# put the space between two words outside the encoded words, where RFC 2047 readers drop it, so
# "Báo cáo" arrived as "Báocáo" in about one subject in ten and in most long display names.
_WORD_BYTES = 40  # 56 base64 characters: "Subject: " plus one encoded word stays within 78 columns


def _encoded_words(text: str) -> list[str]:
    """RFC 2047 "B" encoded words of at most 40 bytes of whole characters, split after a space if possible.

    Spaces stay inside the words. Splitting after a space rather than inside a word matters for the
    readers (Python's own among them) that wrongly keep the folding space between two words of a name.
    """
    chunks: list[str] = []
    rest = text
    while rest:
        end = 0
        while end < len(rest) and len(rest[:end + 1].encode("utf-8")) <= _WORD_BYTES:
            end += 1
        if end < len(rest):
            end = rest.rfind(" ", 0, end) + 1 or end
        chunks.append(rest[:end])
        rest = rest[end:]
    return [f"=?utf-8?b?{base64.b64encode(chunk.encode('utf-8')).decode('ascii')}?=" for chunk in chunks]


def _folded(name: str, tokens: Sequence[str]) -> str:
    """Tokens joined by spaces, folded before a token that would pass 78 columns."""
    lines = [""]
    room = 78 - len(name) - 2
    for token in tokens:
        if lines[-1] and len(lines[-1]) + 1 + len(token) > room:
            lines.append(token)
            room = 77  # a continuation line starts with one space
        else:
            lines[-1] = f"{lines[-1]} {token}" if lines[-1] else token
    return "\r\n ".join(lines)


def _address_field(name: str, addresses: Sequence[Address]) -> str:
    tokens: list[str] = []
    for index, address in enumerate(addresses):
        comma = "," if index < len(addresses) - 1 else ""
        display = address.display_name
        plain = formataddr((display, address.addr_spec)) if display.isascii() else ""
        if not display:
            tokens.append(address.addr_spec + comma)
        elif plain and len(plain) < 70:
            tokens.append(plain + comma)
        else:  # non-ASCII, or too long for one line (a refold would go through the faulty folder)
            tokens += _encoded_words(display)
            tokens.append(f"<{address.addr_spec}>{comma}")
    return _folded(name, tokens)


def _set_text(message: EmailMessage, text: str, subtype: str, alternative: bool) -> None:
    # base64 keeps every line 7-bit, so servers without 8BITMIME relay the UTF-8 text unchanged.
    cte = "7bit" if text.isascii() else "base64"
    part: Message
    if alternative:
        message.add_alternative(text, subtype=subtype, charset="utf-8", cte=cte)
        *_, part = message.iter_parts()  # the multipart/alternative's last part: the one just added
    else:
        message.set_content(text, subtype=subtype, charset="utf-8", cte=cte)
        part = message
    # Set on the part itself: set_content clears every Content-* header it finds.
    part["Content-Language"] = "vi"


def attachment_filename(path: Path) -> str:
    """The file's own name, NFC (macOS writes NFD), without characters mail clients or Windows reject."""
    name = _FILENAME_UNSAFE.sub("_", unicodedata.normalize("NFC", Path(path).name)).strip(" .")
    return name or "tong_hop.xlsx"


def _attach(message: EmailMessage, path: Path, filename: str) -> None:
    maintype, subtype = _MIME_TYPES.get(Path(filename).suffix.lower(), ("application", "octet-stream"))
    # Only Content-Disposition carries the name (RFC 2231): adding a non-ASCII `name` to Content-Type makes
    # the stdlib folder encode the long media type itself as an encoded word, which no client can read.
    message.add_attachment(Path(path).read_bytes(), maintype=maintype, subtype=subtype, filename=filename)


def _check_attachment_size(settings: MailSettings, path: Path) -> None:
    # Refuses an oversized file before reading it into memory; the exact check follows the build.
    size = Path(path).stat().st_size
    if settings.max_bytes > 0 and size > settings.max_bytes:
        raise MailTooLarge(
            f"Tệp đính kèm {attachment_filename(path)} nặng {_megabytes(size)} MB, vượt giới hạn "
            f"{_megabytes(settings.max_bytes)} MB của một thư (max_bytes = {format_number(settings.max_bytes)} "
            f"byte); thư không được tạo. Tệp vẫn nằm trong thư mục kết quả.",
            size=size, limit=settings.max_bytes)


def check_size(message: Message, max_bytes: int) -> int:
    """The serialized size; raises MailTooLarge (Vietnamese, in MB) above a positive `max_bytes`."""
    size = message_size(message)
    if max_bytes > 0 and size > max_bytes:
        raise MailTooLarge(
            f"Thư \"{_clean(message.get('Subject', ''))}\" nặng {_megabytes(size)} MB, vượt giới hạn "
            f"{_megabytes(max_bytes)} MB (max_bytes = {format_number(max_bytes)} byte). Hãy gửi tệp đính kèm "
            f"theo cách khác hoặc nâng giới hạn nếu máy chủ thư cho phép.",
            size=size, limit=max_bytes)
    return size


def _check_size_if_near(message: Message, max_bytes: int) -> None:
    """check_size, when an upper bound of the message's size does not already show it fits: serializing a
    message with a national workbook attached takes a few tenths of a second, and .eml writing does it again."""
    if max_bytes > 0 and _size_bound(message) > max_bytes:
        check_size(message, max_bytes)


def _size_bound(message: Message) -> int:
    """At least the serialized size: every header 8 times over (RFC 2047 encoding of Vietnamese text),
    every payload byte twice (a line end may become CRLF), and room for MIME boundaries."""
    total = 0
    for part in message.walk():
        total += 1024 + 8 * sum(len(name) + len(str(value)) + 4 for name, value in part.items())
        payload = part.get_payload() if not part.is_multipart() else None
        if isinstance(payload, str):
            total += 2 * len(payload.encode("utf-8", "surrogateescape"))
        elif isinstance(payload, bytes):
            total += 2 * len(payload)
    return total


def message_size(message: Message) -> int:
    """Bytes the message takes on the wire (CRLF line ends, before SMTP dot-stuffing)."""
    return len(_wire_bytes(message))


def _wire_bytes(message: Message) -> bytes:
    buffer = io.BytesIO()
    BytesGenerator(buffer, policy=message.policy.clone(linesep="\r\n")).flatten(message, linesep="\r\n")
    return buffer.getvalue()


def build_message(settings: MailSettings, summary: Summary, attachment: Path | None, message_id: str, *,
                  date: datetime | None = None) -> EmailMessage:
    """The run's report mail to settings.to/cc: plain text + HTML, the workbook attached.

    With `attachment=None` the body says the workbook was not attached (e.g. after MailTooLarge).
    Raises MailTooLarge above `settings.max_bytes`, MailConfigError for a malformed Message-ID,
    OSError when the attachment cannot be read.
    """
    if attachment is not None:
        _check_attachment_size(settings, attachment)
    filename = attachment_filename(attachment) if attachment is not None else None
    message = _new_message(settings, subject_for(summary), _addresses(settings.to, "người nhận (to)"),
                           _addresses(settings.cc, "người nhận bản sao (cc)"), message_id, date)
    _set_text(message, _text_body(summary, filename), "plain", alternative=False)
    _set_text(message, _html_body(summary, filename), "html", alternative=True)
    if attachment is not None:
        assert filename is not None  # named above from this same attachment
        _attach(message, attachment, filename)
    _check_size_if_near(message, settings.max_bytes)
    return message


def build_unit_feedback_message(settings: MailSettings, province: str, unit_name: str, unit_email: str,
                                attachment: Path, issues_count: tuple[int, int], message_id: str, *,
                                date: datetime | None = None) -> EmailMessage:
    """A polite mail to one unit with its feedback copy: what to fix, and to send the corrected file back.

    `issues_count` is (errors, warnings). `unit_email` may hold several addresses separated by "," or ";".
    Raises MailConfigError when it holds no usable address, MailTooLarge above `settings.max_bytes`.
    """
    recipients = _addresses([unit_email], f"email của đơn vị {_clean(unit_name)}", required=True)
    _check_attachment_size(settings, attachment)
    errors, warnings = issues_count
    province, unit_name, filename = _clean(province), _clean(unit_name), attachment_filename(attachment)
    if errors:
        subject = f"{SUBJECT_TAG} {province} – Đề nghị {unit_name} sửa và gửi lại báo cáo"
        found = f"báo cáo còn {errors} lỗi" + (f" và {warnings} cảnh báo" if warnings else "")
        asks = ["Sửa các lỗi được nêu trong tệp đính kèm. Báo cáo còn lỗi thì chưa được đưa vào số liệu "
                "tổng hợp toàn tỉnh."]
        if warnings:
            asks.append("Xem lại các cảnh báo và điều chỉnh nếu số liệu chưa đúng.")
        asks.append("Gửi lại tệp báo cáo đã sửa (giữ nguyên biểu mẫu) bằng cách trả lời thư này.")
    elif warnings:
        subject = f"{SUBJECT_TAG} {province} – Đề nghị {unit_name} kiểm tra lại báo cáo"
        found = f"báo cáo đã hợp lệ nhưng còn {warnings} cảnh báo cần xem lại"
        asks = ["Xem lại các cảnh báo được nêu trong tệp đính kèm.",
                "Nếu số liệu chưa đúng, đề nghị sửa và gửi lại tệp báo cáo (giữ nguyên biểu mẫu) bằng cách "
                "trả lời thư này; nếu số liệu đã đúng, đơn vị không cần gửi lại."]
    else:
        subject = f"{SUBJECT_TAG} {province} – Báo cáo của {unit_name} đã hợp lệ"
        found = "báo cáo hợp lệ, không có lỗi hay cảnh báo. Đơn vị không cần gửi lại báo cáo"
        asks = []
    signature = f"{SENDER_BODY} {province}"
    intro = (f"{SENDER_BODY} {province} đã nhận báo cáo kết quả công tác phát triển đảng của đơn vị. "
             f"Qua kiểm tra, {found}.")
    detail = (f"Tệp đính kèm \"{filename}\" là bản phản hồi báo cáo của đơn vị"
              + (", ghi rõ từng nội dung cần xem lại." if asks else ", gửi để đơn vị lưu."))
    request = ["Đề nghị đơn vị:", *[f"{i}. {a}" for i, a in enumerate(asks, 1)], ""] if asks else []
    text = "\n".join([f"Kính gửi: {unit_name},", "", intro, "", detail, "", *request,
                      "Trân trọng cảm ơn sự phối hợp của đơn vị!", "", signature, "-- ",
                      "Thư được gửi tự động; mọi thắc mắc xin trả lời thư này."]) + "\n"
    e = lambda value: html.escape(value, quote=True)  # noqa: E731
    page = "\n".join([
        "<!DOCTYPE html>", f'<html lang="vi"><head><meta charset="utf-8"><title>{e(subject)}</title></head>',
        '<body style="font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#1a1a1a">',
        f"<p>Kính gửi: <b>{e(unit_name)}</b>,</p>", f"<p>{e(intro)}</p>", f"<p>{e(detail)}</p>",
        *(["<p>Đề nghị đơn vị:</p><ol>", *[f"<li>{e(a)}</li>" for a in asks], "</ol>"] if asks else []),
        "<p>Trân trọng cảm ơn sự phối hợp của đơn vị!</p>", f"<p><b>{e(signature)}</b></p>",
        '<p style="color:#666;font-size:12px">Thư được gửi tự động; mọi thắc mắc xin trả lời thư này.</p>',
        "</body></html>"]) + "\n"
    message = _new_message(settings, subject, recipients, (), message_id, date)
    _set_text(message, text, "plain", alternative=False)
    _set_text(message, page, "html", alternative=True)
    _attach(message, attachment, filename)
    _check_size_if_near(message, settings.max_bytes)
    return message


def write_eml(message: Message, path: Path) -> Path:
    """Write the message as an .eml file (CRLF line ends), atomically: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_file_atomic(path, _wire_bytes(message))


# ------------------------------------------------------------------------------------------- sending

# What one SMTP reply may hold. A real server's longest reply (EHLO with its extensions) is well under a
# kilobyte; smtplib bounds each line but not their number, so a server flooding continuation lines
# ("220-…") could grow the process without end.
_REPLY_MAX_BYTES = 64 * 1024
_REPLY_MAX_LINES = 256
_REPLY_LINE_MAX = 8192  # smtplib's own line bound (smtplib._MAXLINE)
_RECV_BYTES = 8192
_SEND_CHUNK = 64 * 1024  # the socket timeout is set again before each chunk of the message body
_MIN_WAIT = 0.001  # a socket timeout of 0 would make the socket non-blocking rather than time out


class _Failure(Exception):
    """One attempt failed; `retry` says whether another attempt can help and cannot duplicate."""

    def __init__(self, description: str, *, retry: bool, code: int | None = None, reply: str = "",
                 uncertain: bool = False) -> None:
        super().__init__(description)
        self.description = description
        self.retry = retry
        self.code = code
        self.reply = reply
        self.uncertain = uncertain


@dataclass
class _Outcome:
    accepted: list[str]
    refused: dict[str, tuple[int, str]]


class _SessionTimeout(TimeoutError):
    """The SMTP session's total deadline has passed."""


class _ReplyFlood(smtplib.SMTPException):
    """A server reply was longer than the client reads (see _REPLY_MAX_BYTES, _REPLY_MAX_LINES)."""


class _ReplyReader:
    """Stands in for smtplib's `file` (sock.makefile): reads lines from the socket, setting the socket
    timeout to what is left of the session before every recv, so a server dripping bytes cannot stretch
    the session. smtplib drops its `file` when the socket changes (connect, STARTTLS), which discards
    anything buffered before TLS began."""

    def __init__(self, sock: socket.socket, remaining) -> None:
        self._sock = sock
        self._remaining = remaining
        self._buffer = bytearray()
        self._eof = False

    def readline(self, limit: int) -> bytes:
        """One line with its b"\\n", or at most `limit` bytes without it, or b"" at the end of the stream."""
        scanned = 0
        while True:
            end = self._buffer.find(b"\n", scanned, limit)
            if end >= 0:
                size = end + 1
                break
            if len(self._buffer) >= limit or self._eof:
                size = min(len(self._buffer), limit)
                break
            scanned = len(self._buffer)
            self._sock.settimeout(self._remaining())
            chunk = self._sock.recv(_RECV_BYTES)
            self._eof = not chunk
            self._buffer += chunk
        line = bytes(self._buffer[:size])
        del self._buffer[:size]
        return line

    def close(self) -> None:
        self._buffer.clear()


class _HandshakeDeadline:
    """Wraps the SSLContext given to STARTTLS so the TLS handshake waits only for what is left of the session
    (CPython bounds one handshake as a whole by the socket timeout)."""

    def __init__(self, context: ssl.SSLContext, remaining) -> None:
        self._context = context
        self._remaining = remaining

    def wrap_socket(self, sock: socket.socket, **options) -> ssl.SSLSocket:
        sock.settimeout(self._remaining())
        return self._context.wrap_socket(sock, **options)


# Derived from SMTP so its uses of SMTP's attributes are checked; _SMTP and _SMTP_SSL resolve methods in the
# same order as with a plain mixin (_Deadline first, then SMTP_SSL, then SMTP).
class _Deadline(smtplib.SMTP):
    """Mixin for smtplib.SMTP and SMTP_SSL: the whole session, from connect to QUIT, ends by `deadline`
    (a time.monotonic() value) and no reply is read beyond _REPLY_MAX_BYTES / _REPLY_MAX_LINES.

    smtplib's timeout applies to each socket operation, so a server answering one byte at a time never
    trips it; here every connect, recv and send first sets the socket timeout to the time left.
    """

    # smtplib internals this mixin relies on, missing from its type stubs (set by SMTP.__init__, and a
    # method of SMTP: annotations only, nothing here shadows them)
    _host: str
    _print_debug: Callable[..., None]

    def __init__(self, *args, deadline: float, **kwargs) -> None:
        self._deadline = deadline
        try:
            super().__init__(*args, **kwargs)  # connects and reads the greeting
        except BaseException:
            self.close()  # smtplib leaves the socket open when reading the greeting fails
            raise

    def _remaining(self) -> float:
        left = self._deadline - time.monotonic()
        if left < _MIN_WAIT:
            raise _SessionTimeout("the SMTP session's deadline has passed")
        return left

    def _connect_socket(self, host: str, port: int) -> socket.socket:
        # socket.create_connection would give each of the host's addresses the whole timeout.
        # (Name resolution itself cannot be bounded without a thread; a literal address or a local
        # resolver keeps it short.)
        error: OSError | None = None
        for family, kind, proto, _, address in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(self._remaining())
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect(address)
                return sock
            except BaseException as exc:
                sock.close()
                if isinstance(exc, _SessionTimeout) or not isinstance(exc, OSError):
                    raise
                error = exc
        raise error if error is not None else OSError(f"getaddrinfo returned no address for {host}")

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return self._connect_socket(host, port)

    def send(self, s: ReadableBuffer | str) -> None:
        if self.debuglevel > 0:
            self._print_debug("send:", repr(s))
        if not self.sock:
            raise smtplib.SMTPServerDisconnected("please run connect() first")
        data = s.encode(self.command_encoding) if isinstance(s, str) else s
        sys.audit("smtplib.send", self, data)
        view = memoryview(data)
        try:
            for start in range(0, len(view), _SEND_CHUNK):
                self.sock.settimeout(self._remaining())
                self.sock.sendall(view[start:start + _SEND_CHUNK])
        except TimeoutError:
            self.close()
            raise
        except OSError as exc:
            self.close()
            raise smtplib.SMTPServerDisconnected(f"Server not connected ({exc})") from exc

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None:
            if self.sock is None:  # as send() says; smtplib itself would fail on the missing socket here
                raise smtplib.SMTPServerDisconnected("please run connect() first")
            self.file = _ReplyReader(self.sock, self._remaining)
        lines: list[bytes] = []
        size = 0
        while True:
            try:
                line = self.file.readline(_REPLY_LINE_MAX + 1)
            except TimeoutError:
                self.close()
                raise
            except OSError as exc:
                self.close()
                raise smtplib.SMTPServerDisconnected(f"Connection unexpectedly closed: {exc}") from exc
            if not line:
                self.close()
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            if self.debuglevel > 0:
                self._print_debug("reply:", repr(line))
            size += len(line)
            if len(line) > _REPLY_LINE_MAX or size > _REPLY_MAX_BYTES or len(lines) >= _REPLY_MAX_LINES:
                self.close()
                raise _ReplyFlood(f"reply longer than {_REPLY_MAX_LINES} lines or {_REPLY_MAX_BYTES} bytes")
            lines.append(line[4:].strip(b" \t\r\n"))
            try:
                code = int(line[:3])
            except ValueError:
                code = -1  # like smtplib: a broken code ends the reply
                break
            if line[3:4] != b"-":
                break
        return code, b"\n".join(lines)

    # Narrower than SMTP.starttls on purpose: no keyfile/certfile, and a context is required.
    def starttls(self, *, context: ssl.SSLContext) -> tuple[int, bytes]:  # type: ignore[override]
        # smtplib only calls wrap_socket on the context, which _HandshakeDeadline provides
        return super().starttls(context=cast(ssl.SSLContext, _HandshakeDeadline(context, self._remaining)))


class _SMTP(_Deadline, smtplib.SMTP):
    pass


class _SMTP_SSL(_Deadline, smtplib.SMTP_SSL):
    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = self._connect_socket(host, port)
        try:
            sock.settimeout(self._remaining())
            return self.context.wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            sock.close()
            raise


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


def _server(settings: MailSettings) -> str:
    return f"{settings.host}:{settings.port}"


def _seconds(settings: MailSettings) -> str:
    """timeout_seconds as staff write it: 30 → "30", 2.5 → "2,5"."""
    return f"{float(settings.timeout_seconds):g}".replace(".", ",")


def _flood_description(settings: MailSettings, *, after_data: bool = False) -> str:
    when = " sau khi đã nhận toàn bộ nội dung thư" if after_data else ""
    return (f"máy chủ thư {_server(settings)} gửi câu trả lời dài bất thường (quá {_REPLY_MAX_LINES} dòng hoặc "
            f"{_REPLY_MAX_BYTES // 1024} KiB){when}; chương trình đã ngừng đọc và ngắt kết nối, hãy kiểm tra host "
            f"và port trong cấu hình thư")


def _classify(exc: BaseException, settings: MailSettings) -> _Failure:
    """Turn an smtplib/socket error into a Vietnamese description and a retry decision."""
    server = _server(settings)
    # Order matters: every smtplib exception is also an OSError.
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return _Failure(f"máy chủ thư {server} không hỗ trợ chức năng cần dùng ({exc})", retry=False)
    if isinstance(exc, _ReplyFlood):
        return _Failure(_flood_description(settings), retry=False)
    if isinstance(exc, smtplib.SMTPResponseException):
        code, reply = exc.smtp_code, _reply_text(exc.smtp_error)
        temporary = 400 <= code < 500 or (isinstance(exc, smtplib.SMTPConnectError) and not 500 <= code < 600)
        if isinstance(exc, smtplib.SMTPAuthenticationError) and not temporary:
            description = (f"máy chủ thư {server} từ chối đăng nhập: \"{code} {reply}\"; kiểm tra tên đăng nhập "
                           f"(user) và mật khẩu")
        else:
            description = f"máy chủ thư {server} trả lời \"{code} {reply}\""
        return _Failure(description, retry=temporary, code=code, reply=reply)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return _Failure(f"máy chủ thư {server} ngắt kết nối ({exc})", retry=True)
    if isinstance(exc, TimeoutError):
        # Every socket operation waits only for what is left of the session, so any timeout is the deadline.
        return _Failure(f"máy chủ thư {server} không trả lời trong {_seconds(settings)} giây (giới hạn "
                        f"timeout_seconds của một lần gửi)", retry=True)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _Failure(f"chứng chỉ TLS của máy chủ thư {server} không hợp lệ ({exc.verify_message or exc}); "
                        f"nếu máy chủ dùng chứng chỉ nội bộ, khai báo ca_file", retry=False)
    if isinstance(exc, ssl.SSLError):
        return _Failure(f"lỗi TLS khi kết nối tới máy chủ thư {server} ({exc.reason or exc}); kiểm tra security "
                        f"(\"ssl\" cho cổng 465, \"starttls\" cho cổng 587)", retry=True)
    if isinstance(exc, smtplib.SMTPException):
        return _Failure(f"lỗi giao tiếp với máy chủ thư {server} ({exc})", retry=False)
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc) or type(exc).__name__
        return _Failure(f"không kết nối được tới máy chủ thư {server} ({reason})", retry=True)
    raise exc


def _tls_context(settings: MailSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.ca_file or None)


def _open(settings: MailSettings, deadline: float) -> smtplib.SMTP:
    timeout = float(settings.timeout_seconds)
    if settings.security == "ssl":
        connection: smtplib.SMTP = _SMTP_SSL(settings.host, settings.port, timeout=timeout,
                                             context=_tls_context(settings), deadline=deadline)
    else:
        connection = _SMTP(settings.host, settings.port, timeout=timeout, deadline=deadline)
    try:
        connection.ehlo_or_helo_if_needed()
        if settings.security == "starttls":
            if not connection.has_extn("starttls"):
                raise _Failure(f"máy chủ thư {_server(settings)} không hỗ trợ STARTTLS; kiểm tra cấu hình "
                               f"security (\"ssl\" nếu máy chủ dùng cổng 465, \"none\" nếu là máy chủ nội bộ "
                               f"không mã hoá)", retry=False)
            connection.starttls(context=_tls_context(settings))
            connection.ehlo()
        if settings.user:
            if not connection.has_extn("auth"):
                raise _Failure(f"máy chủ thư {_server(settings)} không cho đăng nhập (không có AUTH"
                               f"{' trên kết nối chưa mã hoá' if settings.security == 'none' else ''}); "
                               f"bỏ trống user hoặc dùng security \"starttls\"/\"ssl\"", retry=False)
            connection.login(settings.user, settings.password)
    except BaseException:
        _close(connection)
        raise
    return connection


def _close(connection: smtplib.SMTP) -> None:
    try:
        connection.close()
    except OSError:
        pass


def _quit(connection: smtplib.SMTP) -> None:
    # After the server accepted the message a failing QUIT changes nothing, so it must not look like a failure.
    try:
        connection.quit()
    except (OSError, smtplib.SMTPException) as exc:
        log.debug("QUIT after delivery failed: %s", exc)
        _close(connection)


# A large message takes time to upload on an office line: its session gets this much longer, per byte.
_UPLOAD_BYTES_PER_SECOND = 250_000  # 2 Mbit/s


def _attempt(settings: MailSettings, sender: str, recipients: Sequence[str], data: bytes,
             on_handover: Callable[[], None] | None = None) -> _Outcome:
    """One SMTP session; it ends, whatever the server does, within settings.timeout_seconds (plus the
    time the message takes to upload at 2 Mbit/s). `on_handover()` is called just before the message
    itself is written: from then on the server may end up holding it."""
    deadline = time.monotonic() + float(settings.timeout_seconds) + len(data) / _UPLOAD_BYTES_PER_SECOND
    connection: smtplib.SMTP | None = None
    try:
        try:
            connection = _open(settings, deadline)
            server_limit = connection.esmtp_features.get("size", "")
            if server_limit.isdigit() and 0 < int(server_limit) < len(data):
                raise MailTooLarge(
                    f"Thư nặng {_megabytes(len(data))} MB, vượt giới hạn {_megabytes(int(server_limit))} MB mà máy "
                    f"chủ thư {_server(settings)} chấp nhận.", size=len(data), limit=int(server_limit))
            options = [f"SIZE={len(data)}"] if connection.has_extn("size") else []
            code, reply = connection.mail(sender, options)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, sender)
            accepted: list[str] = []
            refused: dict[str, tuple[int, str]] = {}
            for recipient in recipients:
                code, reply = connection.rcpt(recipient)
                if code in (250, 251):
                    accepted.append(recipient)
                else:
                    refused[recipient] = (code, _reply_text(reply))
            if not accepted:
                try:
                    connection.rset()
                except (OSError, smtplib.SMTPException):
                    pass
                return _Outcome([], refused)
            code, reply = connection.docmd("DATA")
            if code != 354:
                raise smtplib.SMTPDataError(code, reply)
            if on_handover is not None:
                on_handover()
            # The terminating "." goes last in this one write: if the write fails (or runs out of time), the
            # server cannot hold a complete message, so trying again cannot produce a second copy.
            connection.send(data)
        except (_Failure, MailError):
            raise
        except (OSError, smtplib.SMTPException) as exc:
            raise _classify(exc, settings) from exc
        try:
            code, reply = connection.getreply()
        except (OSError, smtplib.SMTPException) as exc:
            # The server has the whole message and may have queued it: never retried.
            if isinstance(exc, TimeoutError):
                description = (f"máy chủ thư {_server(settings)} không xác nhận đã nhận thư trong {_seconds(settings)} "
                               f"giây (giới hạn timeout_seconds của một lần gửi) sau khi đã gửi toàn bộ nội dung thư")
            elif isinstance(exc, _ReplyFlood):
                description = _flood_description(settings, after_data=True)
            else:
                description = (f"mất kết nối với máy chủ thư {_server(settings)} sau khi đã gửi toàn bộ nội dung "
                               f"thư, trước khi máy chủ xác nhận ({exc})")
            raise _Failure(description, retry=False, uncertain=True) from exc
        reply_text = _reply_text(reply)
        if code == 250:
            _quit(connection)
            connection = None
            return _Outcome(accepted, refused)
        if 400 <= code < 600:
            raise _Failure(f"máy chủ thư {_server(settings)} không nhận nội dung thư: \"{code} {reply_text}\"",
                           retry=code < 500, code=code, reply=reply_text)
        raise _Failure(f"máy chủ thư {_server(settings)} trả lời không rõ ràng sau khi nhận nội dung thư: "
                       f"\"{code} {reply_text}\"", retry=False, code=code, reply=reply_text, uncertain=True)
    finally:
        if connection is not None:
            _close(connection)


def _envelope_recipients(message: Message) -> list[str]:
    found: list[str] = []
    for header in ("To", "Cc", "Bcc"):
        for value in message.get_all(header, []):
            addresses = getattr(value, "addresses", None)
            if addresses is None:
                addresses = [Address(addr_spec=a) for _, a in getaddresses([str(value)]) if a]
            for address in addresses:
                if address.addr_spec and address.addr_spec.lower() not in {f.lower() for f in found}:
                    found.append(address.addr_spec)
    return found


def _dot_stuffed(message: Message) -> bytes:
    if message.get("Bcc") is not None:
        message = _without_bcc(message)
    data = _wire_bytes(message)
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(_CRLF):
        data += _CRLF
    return data + b"." + _CRLF


def _without_bcc(message: Message) -> Message:
    stripped = copy.deepcopy(message)
    del stripped["Bcc"]
    return stripped


def send_message(settings: MailSettings, message: Message, *, recipients: Sequence[str] | None = None,
                 on_handover: Callable[[], None] | None = None) -> None:
    """Deliver `message` once to its To/Cc/Bcc addresses (or `recipients`), retrying what is safe to retry.

    `on_handover()` runs each time the message itself is about to be written to a server (after DATA
    was accepted): the caller records there that the message's fate may no longer be known.

    Retries connection failures and 4xx replies with backoff_seconds * 2**attempt between attempts, up to
    settings.retries attempts; a 5xx reply, a refused login or a missing STARTTLS ends at once. A recipient
    refused with 4xx while others accepted is retried alone, so nobody gets two copies. Raises MailError
    (Vietnamese, with the server's reply); check `resend_safe` before queuing the message again.

    Each attempt is one SMTP session that ends within settings.timeout_seconds whatever the server does
    (a server answering one byte at a time is cut off at the deadline, one flooding a reply as soon as the
    reply passes _REPLY_MAX_LINES / _REPLY_MAX_BYTES), so the call returns within retries × timeout_seconds
    plus the backoffs; only resolving the host name is outside that bound.
    """
    if not settings.host:
        raise MailConfigError("Chưa cấu hình máy chủ thư (host); không gửi được thư.")
    message_id = _clean(message.get("Message-ID", "")) or "(không có Message-ID)"
    check_size(message, settings.max_bytes)
    if recipients is None:
        pending = _envelope_recipients(message)
    else:
        pending = [a.addr_spec for a in _addresses(recipients, "người nhận")]
    if not pending:
        raise MailConfigError(f"Thư {message_id} không có người nhận.")
    _addresses(pending, "người nhận")  # non-ASCII or malformed addresses would fail inside smtplib
    if settings.user and settings.security == "none":
        log.warning("SMTP login to %s without TLS: the password crosses the network in clear", _server(settings))
    sender = settings.sender_address
    data = _dot_stuffed(message)
    attempts = int(settings.retries)
    delivered: list[str] = []
    permanent: dict[str, str] = {}
    permanent_reply: tuple[int | None, str] = (None, "")
    failure: _Failure | None = None
    attempt = 0
    for attempt in range(1, attempts + 1):
        try:
            outcome = _attempt(settings, sender, pending, data, on_handover)
        except MailTooLarge as exc:
            exc.delivered_to = tuple(delivered)
            raise
        except _Failure as exc:
            failure = exc
            log.warning("mail %s: attempt %d/%d failed: %s", message_id, attempt, attempts, exc.description)
            if not exc.retry:
                break
        else:
            delivered += outcome.accepted
            if outcome.accepted:
                log.info("mail %s accepted by %s for %s", message_id, _server(settings), ", ".join(outcome.accepted))
            pending, deferred, failure = [], [], None
            for address, (code, reply) in outcome.refused.items():
                description = f"máy chủ thư từ chối người nhận {address}: \"{code} {reply}\""
                log.warning("mail %s: recipient %s refused (%d %s)", message_id, address, code, reply)
                if 400 <= code < 500:
                    pending.append(address)
                    deferred.append(description)
                    failure = _Failure("; ".join(deferred), retry=True, code=code, reply=reply)
                else:
                    permanent[address] = description
                    permanent_reply = (code, reply)
            if not pending:
                break
        if attempt < attempts:
            time.sleep(float(settings.backoff_seconds) * 2 ** (attempt - 1))

    if failure is None and not permanent:
        return
    reasons = list(permanent.values())
    if failure is not None:
        reasons.append(failure.description)
    if failure is not None and failure.uncertain:
        text = (f"Không rõ máy chủ thư đã nhận thư {message_id} hay chưa: {failure.description}. Không gửi lại để "
                f"tránh người nhận nhận hai lần; hãy hỏi lại người nhận.")
    elif failure is not None and failure.retry:
        text = f"Không gửi được thư {message_id} sau {attempt} lần thử: {'; '.join(reasons)}."
    else:
        text = (f"Không gửi được thư {message_id}: {'; '.join(reasons)}. Lỗi này không tự hết nên không thử lại; "
                f"hãy sửa cấu hình hoặc địa chỉ rồi gửi lại.")
    if delivered:
        text += f" Thư đã đến: {', '.join(delivered)} (không gửi lại cho các địa chỉ này)."
    last_code, last_reply = (failure.code, failure.reply) if failure is not None else permanent_reply
    raise MailError(text, code=last_code, reply=last_reply, attempts=attempt, delivered_to=delivered,
                    uncertain=bool(failure and failure.uncertain))

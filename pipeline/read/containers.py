"""Containers whose members are submissions of their own: a .zip, a saved mail (.eml), an Outlook .msg.

`open_container` lists a container's members as bytes, bounded: at most MAX_MEMBERS members, each no
larger than a file may be, all together no more than the archive budget, read one byte past each cap so
a size that lies is caught; containers nest (a forwarded mail inside a mail, a zip attached to one) at
most MAX_DEPTH deep. A mail's members carry its sender's address and its Date, which stand for the
unit and the time of receipt of what is attached.

Nothing here parses a member: the reader screens and reads each one as it would an inbox file.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.core.issues import Issue, make_issue
from pipeline.core.textnorm import display_name
from pipeline.read.screen import Limits

if TYPE_CHECKING:
    from email.message import Message

MAX_MEMBERS = 100  # members of one container: a unit's reply carries a few; a mail of 500 is not a report
MAX_DEPTH = 3  # containers inside containers (mail → forwarded mail → zip)
CONTAINER_KINDS = frozenset({"zip", "eml", "msg"})

_SYSTEM_NAMES = {"thumbs.db", "desktop.ini", "ehthumbs.db", ".ds_store"}


@dataclass(frozen=True, slots=True)
class Member:
    name: str  # as shown in every output, relative to the container: "bao cao.xlsx", "thu/bao cao.xlsx"
    data: bytes
    received: float | None = None  # the mail's Date, as a timestamp
    sender: str = ""  # the mail's From address, lower case


@dataclass(frozen=True)
class Opened:
    """A container's members, what it had to be refused for (then no member), and the members left out
    as not submissions (name, reason)."""

    members: list[Member] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def member_junk_reason(name: str) -> str:
    """Why a member is not a submission (folders, system and lock files, macOS resource forks); ""."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    if name.endswith("/") or not base:
        return "thư mục"
    if name.startswith("__MACOSX/") or base.startswith("._"):
        return "tệp phụ của macOS"
    if base.lower() in _SYSTEM_NAMES:
        return "tệp hệ thống"
    if base.startswith(("~$", ".~lock.")):
        return "tệp khoá tạm của Office/LibreOffice"
    if base.startswith("."):
        return "tệp ẩn"
    return ""


def open_container(kind: str, data: bytes, limits: Limits) -> Opened:
    try:
        if kind == "zip":
            return _open_zip(data, limits)
        if kind == "eml":
            return _open_mail(data, limits)
        if kind == "msg":
            return _open_msg(data, limits)
    except MemoryError:
        raise
    except Exception as exc:  # zipfile, email and extract_msg raise many kinds on damaged input
        return Opened(issues=[make_issue("container_unreadable", detail=f"{type(exc).__name__}")])
    raise ValueError(f"not a container: {kind}")


# ---------------------------------------------------------------- zip

def zip_member_name(info: zipfile.ZipInfo) -> str:
    """A member's name as its writer meant it: the Info-ZIP Unicode Path field when present, UTF-8 when
    flagged (zipfile decodes it), else the bytes as UTF-8 when they are valid UTF-8 (tools that write it
    without the flag), else CP437 as the format says."""
    unicode_path = _unicode_path_field(info.extra)
    if unicode_path:
        return unicode_path
    if info.flag_bits & 0x800:
        return info.filename
    raw = info.filename.encode("cp437", errors="replace")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return info.filename
    return decoded


def _unicode_path_field(extra: bytes) -> str:
    position = 0
    while position + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, position)
        body = extra[position + 4:position + 4 + size]
        if tag == 0x7075 and len(body) > 5 and body[0] == 1:
            try:
                return body[5:].decode("utf-8")
            except UnicodeDecodeError:
                return ""
        position += 4 + size
    return ""


def _open_zip(data: bytes, limits: Limits) -> Opened:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        entries = archive.infolist()
        files = [e for e in entries if not e.is_dir()]
        if len(files) > MAX_MEMBERS:
            return Opened(issues=[make_issue("container_too_many", count=len(files), limit=MAX_MEMBERS)])
        budget = limits.max_total_uncompressed
        members: list[Member] = []
        skipped: list[tuple[str, str]] = []
        for entry in files:
            name = _clean_name(zip_member_name(entry))
            reason = member_junk_reason(name)
            if reason:
                skipped.append((name, reason))
                continue
            if entry.flag_bits & 0x1:
                return Opened(issues=[make_issue("file_encrypted")])
            cap = min(limits.max_file_bytes, budget)
            with archive.open(entry) as stream:
                content = stream.read(cap + 1)  # never more than the cap, whatever the header declares
            if len(content) > cap:
                if cap == budget:
                    return Opened(issues=[make_issue("zip_bomb", size=f"trên {_mb(limits.max_total_uncompressed)}")])
                return Opened(issues=[make_issue("file_too_large", size=f"trên {_mb(cap)}", limit=_mb(cap))])
            budget -= len(content)
            members.append(Member(name, content))
        return Opened(members, skipped=skipped)


def _clean_name(name: str) -> str:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return display_name("/".join(parts)) + ("/" if name.endswith("/") else "")


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB"


# ---------------------------------------------------------------- mail

def _open_mail(data: bytes, limits: Limits) -> Opened:
    # deferred: the email package (~10 ms to import) loads in a reader only when a saved mail arrives
    import email
    import email.policy

    message = email.message_from_bytes(data, policy=email.policy.default)
    return _mail_members(message, limits)


def _mail_members(message: Message, limits: Limits) -> Opened:
    sender = _sender(message)
    received = _date(message)
    members: list[Member] = []
    skipped: list[tuple[str, str]] = []
    budget = limits.max_total_uncompressed
    parts = [p for p in message.walk() if not p.is_multipart()]
    attachments = [p for p in parts if _attachment_name(p)]
    if len(attachments) > MAX_MEMBERS:
        return Opened(issues=[make_issue("container_too_many", count=len(attachments), limit=MAX_MEMBERS)])
    used: set[str] = set()
    for index, part in enumerate(attachments, start=1):
        name = _clean_name(_attachment_name(part) or f"tep_dinh_kem_{index}")
        reason = member_junk_reason(name)
        if reason:
            skipped.append((name, reason))
            continue
        payload = _payload(part)
        if len(payload) > min(limits.max_file_bytes, budget):
            return Opened(issues=[make_issue("zip_bomb", size=f"trên {_mb(limits.max_total_uncompressed)}")])
        budget -= len(payload)
        unique = name
        suffix = 2
        while unique in used:  # two attachments of one name stay two submissions
            stem, dot, extension = name.rpartition(".")
            unique = f"{stem} ({suffix}).{extension}" if dot else f"{name} ({suffix})"
            suffix += 1
        used.add(unique)
        members.append(Member(unique, payload, received, sender))
    return Opened(members, skipped=skipped)


def _payload(part: Message) -> bytes:
    """An attachment's bytes; a forwarded message (message/rfc822) as the message it is."""
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and hasattr(inner[0], "as_bytes"):
            return inner[0].as_bytes()
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    return str(payload or "").encode("utf-8")


def _attachment_name(part: Message) -> str:
    name = part.get_filename()
    if name:
        return str(name)
    if part.get_content_type() == "message/rfc822":
        return "thu_chuyen_tiep.eml"
    disposition = (part.get("Content-Disposition") or "").lower()
    if disposition.startswith("attachment"):
        return "tep_dinh_kem"
    return ""


def _sender(message: Message) -> str:
    import email.utils  # deferred with the email package, above

    address = email.utils.parseaddr(str(message.get("From", "")))[1]
    return address.strip().lower()


def _date(message: Message) -> float | None:
    import email.utils  # deferred with the email package, above

    value = message.get("Date")
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return None  # a date without a zone says no instant; the file's own time stands
    return parsed.timestamp()


# ---------------------------------------------------------------- Outlook .msg

def _open_msg(data: bytes, limits: Limits) -> Opened:
    # deferred: extract_msg (and its dependencies) load only when an Outlook message arrives
    import email.utils

    import extract_msg

    message = extract_msg.openMsg(io.BytesIO(data))
    try:
        sender = email.utils.parseaddr(str(getattr(message, "sender", "") or ""))[1].strip().lower()
        when = getattr(message, "date", None)
        received = when.timestamp() if when is not None and getattr(when, "tzinfo", None) is not None else None
        attachments = list(getattr(message, "attachments", []) or [])
        if len(attachments) > MAX_MEMBERS:
            return Opened(issues=[make_issue("container_too_many", count=len(attachments), limit=MAX_MEMBERS)])
        members: list[Member] = []
        skipped: list[tuple[str, str]] = []
        budget = limits.max_total_uncompressed
        for index, attachment in enumerate(attachments, start=1):
            payload = getattr(attachment, "data", None)
            named = getattr(attachment, "longFilename", None) or getattr(attachment, "shortFilename", None)
            name = _clean_name(str(named or f"tep_dinh_kem_{index}"))
            if not isinstance(payload, bytes):
                if payload is not None and hasattr(payload, "exportBytes"):  # an attached message
                    payload = payload.exportBytes()
                    name = name if name.lower().endswith(".msg") else f"{name}.msg"
                else:
                    skipped.append((name, "phần đính kèm không có nội dung"))
                    continue
            reason = member_junk_reason(name)
            if reason:
                skipped.append((name, reason))
                continue
            if len(payload) > min(limits.max_file_bytes, budget):
                return Opened(issues=[make_issue("zip_bomb", size=f"trên {_mb(limits.max_total_uncompressed)}")])
            budget -= len(payload)
            members.append(Member(name, payload, received, sender))
        return Opened(members, skipped=skipped)
    finally:
        message.close()


__all__ = ["CONTAINER_KINDS", "MAX_DEPTH", "MAX_MEMBERS", "Member", "Opened",
           "member_junk_reason", "open_container", "zip_member_name"]

"""Scan the inbox: every file gets an entry; junk is recognised here and never opened."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.textnorm import display_name

# What a unit may send as its report: a workbook, a document holding the form, or a container of them.
# A file of another kind that is not a form (a note, a web page) is recorded as not a report, not rejected.
REPORT_EXTENSIONS = frozenset({".xlsx", ".xlsm", ".xls", ".ods", ".xlsb", ".xml", ".docx", ".doc", ".odt", ".rtf",
                               ".zip", ".eml", ".msg"})
_SYSTEM_FILES = {"thumbs.db": "tệp hệ thống của Windows", "desktop.ini": "tệp hệ thống của Windows",
                 "ehthumbs.db": "tệp hệ thống của Windows", ".ds_store": "tệp hệ thống của macOS"}


@dataclass(frozen=True, slots=True)
class InboxFile:
    path: Path
    name: str  # relative to the inbox, "/"-separated, NFC: the name users and exports see
    size: int
    mtime: float
    junk_reason: str = ""  # Vietnamese; empty for a file to read
    mtime_ns: int = 0  # the same time to the nanosecond, for fingerprints; 0 when not known

    @property
    def extension(self) -> str:
        return Path(self.name).suffix.lower()


def junk_reason(name: str) -> str:
    """Why a file is not a submission, in Vietnamese; empty when it should be read."""
    base = name.rsplit("/", 1)[-1]
    lower = base.lower()
    if lower in _SYSTEM_FILES:
        return _SYSTEM_FILES[lower]
    if base.startswith(("~$", ".~lock.")):
        return "tệp khoá tạm của Office/LibreOffice khi đang mở tệp"
    if base.startswith("."):
        return "tệp ẩn"
    return ""  # everything else is read: what it holds decides, not its name


def scan(inbox: Path) -> list[InboxFile]:
    """All regular files below the inbox, sorted by name. Hidden folders are skipped whole; links,
    pipes and devices are not files anyone sent. A folder below the inbox that cannot be listed gets
    an entry of its own saying so (the files in it must not vanish without a word); an inbox that
    cannot be listed raises OSError."""
    found: list[InboxFile] = []
    folders: list[tuple[str, str]] = [(str(inbox), "")]
    while folders:
        folder, prefix = folders.pop()
        try:
            with os.scandir(folder) as entries:
                listed = list(entries)
        except OSError as exc:
            if not prefix:
                raise
            name = display_name(prefix.rstrip("/"))
            reason = f"thư mục không đọc được ({exc.strerror or exc}); các tệp trong đó chưa được tổng hợp"
            try:
                mtime = os.lstat(folder).st_mtime
            except OSError:
                mtime = 0.0
            found.append(InboxFile(path=Path(folder), name=name + "/", size=0, mtime=mtime, junk_reason=reason))
            continue
        for entry in listed:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not entry.name.startswith("."):
                        folders.append((entry.path, f"{prefix}{entry.name}/"))
                    continue
                # One stat per file, and it comes with the directory listing where the system allows.
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            name = display_name(prefix + entry.name)
            found.append(InboxFile(path=Path(entry.path), name=name, size=info.st_size, mtime=info.st_mtime,
                                   junk_reason=junk_reason(name), mtime_ns=info.st_mtime_ns))
    found.sort(key=lambda f: f.name)
    return found

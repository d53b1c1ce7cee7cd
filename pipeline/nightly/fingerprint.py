"""The fingerprint of everything a run depends on: when it has not changed since the last completed
run, the nightly job writes and sends nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline import __version__
from pipeline.core.config import Config
from pipeline.stages.intake import InboxFile


def _program_digest() -> bytes:
    """The program's version and the text of its modules: an upgrade that changes a rule or a reader
    must re-run an unchanged inbox."""
    digest = hashlib.sha256(__version__.encode("utf-8"))
    package = Path(__file__).resolve().parents[1]
    for module in sorted(package.rglob("*.py")):
        try:
            digest.update(module.relative_to(package).as_posix().encode("utf-8") + b"\0" + module.read_bytes())
        except OSError:
            digest.update(b"unreadable")
    return digest.digest()


def fingerprint(files: list[InboxFile], config: Config, form_path: Path) -> str:
    """Changes when any inbox file, the registry, the form definition, the report settings or the
    program itself change."""
    digest = hashlib.sha256(_PROGRAM_DIGEST)
    for entry in files:
        # The scan's own stat when it kept the nanoseconds; the same text either way. Names are
        # printable (undecodable bytes escaped), so they always encode.
        size, mtime_ns = (entry.size, entry.mtime_ns) if entry.mtime_ns else _size_and_time(entry.path)
        digest.update(f"{entry.name}\0{size}\0{mtime_ns}\0{entry.junk_reason}\n".encode("utf-8", "surrogatepass"))
    for path in (config.paths.registry, form_path):
        try:
            digest.update(hashlib.sha256(Path(path).read_bytes()).digest())
        except OSError:
            digest.update(b"missing")
    report = config.report
    digest.update(f"{report.province}|{report.deadline}|{report.unit_sheet_limit}|{report.feedback_limit}"
                  .encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


_PROGRAM_DIGEST = _program_digest()


def _size_and_time(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns

"""What `tonghop status` tells: the ledger's memory of runs and mail, and what is waiting in the inbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pipeline.core.config import Config
from pipeline.core.form import DEFAULT_FORM
from pipeline.stages.intake import scan
from pipeline.nightly.fingerprint import fingerprint
from pipeline.nightly.ledger import Ledger, MailRecord, RunRecord


@dataclass
class InstallationStatus:
    runs: list[RunRecord] = field(default_factory=list)
    mails: list[MailRecord] = field(default_factory=list)
    inbox_changed: bool | None = None
    inbox_files: int = 0
    settling: list[str] = field(default_factory=list)


def installation_status(config: Config, limit: int = 10, now: datetime | None = None) -> InstallationStatus:
    report = InstallationStatus()
    ledger_path = config.paths.ledger_path
    last = None
    if ledger_path.exists():
        with Ledger(ledger_path) as ledger:
            report.runs = ledger.recent_runs(limit)
            report.mails = ledger.mails(limit=limit)
            last = ledger.last_completed()
    try:
        files = scan(config.paths.inbox)
    except OSError:
        return report
    horizon = (now or datetime.now()).timestamp() - config.report.settle_seconds
    ready = [f for f in files if f.mtime <= horizon or f.junk_reason]
    report.settling = [f.name for f in files if not (f.mtime <= horizon or f.junk_reason)]
    report.inbox_files = len(ready)
    current = fingerprint(ready, config, config.paths.form or DEFAULT_FORM)
    report.inbox_changed = last is None or current != last.fingerprint
    return report

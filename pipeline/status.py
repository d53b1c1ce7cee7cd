"""What `tonghop status` and `tonghop schedule` tell: the ledger's memory and a ready-made schedule."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pipeline.config import Config
from pipeline.form import DEFAULT_FORM
from pipeline.intake import scan
from pipeline.ledger import Ledger, MailRecord, RunRecord


@dataclass
class InstallationStatus:
    runs: list[RunRecord] = field(default_factory=list)
    mails: list[MailRecord] = field(default_factory=list)
    inbox_changed: bool | None = None
    inbox_files: int = 0
    settling: list[str] = field(default_factory=list)


def installation_status(config: Config, limit: int = 10, now: datetime | None = None) -> InstallationStatus:
    from pipeline.nightly import fingerprint

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
    report.inbox_changed = last is None or fingerprint(ready, config, config.paths.form or DEFAULT_FORM) != last.fingerprint
    return report


def schedule_text(kind: str, hour: int, minute: int, workdir: Path, executable: Path | None,
                  config_file: Path | None) -> str:
    """A cron line, a systemd service + timer, or a schtasks command running `tonghop run` nightly."""
    if executable is None:
        command = [sys.executable, "-m", "pipeline", "run"]
    else:
        command = [str(executable), "run"]
    if config_file is not None:
        command += ["--config", str(config_file)]
    if kind == "cron":
        line = f"cd {shlex.quote(str(workdir))} && {shlex.join(command)} >/dev/null 2>&1"
        return (f"# Tổng hợp báo cáo phát triển đảng lúc {hour:02d}:{minute:02d} hằng đêm (nhật ký: outbox/tonghop.log)\n"
                f"{minute} {hour} * * * {line}\n")
    if kind == "systemd":
        exec_line = " ".join(shlex.quote(part) for part in command)
        return (
            "# /etc/systemd/system/tonghop.service\n"
            "[Unit]\n"
            "Description=Tổng hợp báo cáo phát triển đảng (tonghop)\n"
            "After=network-online.target\n"
            "Wants=network-online.target\n\n"
            "[Service]\n"
            "Type=oneshot\n"
            f"WorkingDirectory={workdir}\n"
            f"ExecStart={exec_line}\n"
            "# exit code 75: another run was still going; not a failure\n"
            "SuccessExitStatus=75\n"
            "EnvironmentFile=-/etc/tonghop.env\n\n"
            "# /etc/systemd/system/tonghop.timer\n"
            "[Unit]\n"
            "Description=Chạy tonghop hằng đêm\n\n"
            "[Timer]\n"
            f"OnCalendar=*-*-* {hour:02d}:{minute:02d}:00\n"
            "Persistent=true\n\n"
            "[Install]\n"
            "WantedBy=timers.target\n\n"
            "# Cài đặt: systemctl daemon-reload && systemctl enable --now tonghop.timer\n"
        )
    if kind == "windows":
        inner = " ".join(f'\\"{part}\\"' if " " in part else part for part in command)
        return (f'schtasks /Create /F /SC DAILY /ST {hour:02d}:{minute:02d} /TN "tonghop" '
                f'/TR "cmd /c cd /d \\"{workdir}\\" && {inner}"\n')
    raise ValueError(kind)

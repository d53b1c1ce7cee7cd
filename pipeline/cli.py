"""Command line: parses options, calls the library, prints what it returns. Nothing else."""

from __future__ import annotations

import gc
import logging
import logging.handlers
import os
import sys
from pathlib import Path

import click

from pipeline import __version__
from pipeline.config import Config, ConfigError, load_config
from pipeline.form import DEFAULT_FORM, FormDefinitionError
from pipeline.registry import DEFAULT_REGISTRY, RegistryError

EXIT_CANNOT_RUN = 2
EXIT_LOCKED = 75

STATUS_TEXT = {
    "accepted": "HỢP LỆ",
    "rejected": "TRẢ LẠI",
    "superseded": "ĐÃ CÓ TỆP MỚI HƠN",
    "ignored": "BỎ QUA",
    "missing": "CHƯA NỘP",
}
SEVERITY_TEXT = {"error": "lỗi", "warning": "cảnh báo", "info": "thông tin"}
MAIL_STATE_TEXT = {"built": "chờ gửi", "sending": "đang gửi",
                   "unknown": "chưa rõ kết quả (máy chủ thư có thể đã nhận; không tự gửi lại, hãy hỏi người nhận)",
                   "abandoned": "bỏ, không gửi (lần tổng hợp tạo thư bị dừng giữa chừng)", "sent": "đã gửi",
                   "failed": "gửi lỗi, sẽ gửi lại", "written": "đã ghi tệp .eml (chưa cấu hình SMTP)",
                   "too_large": "quá dung lượng, không gửi", "failed_build": "không tạo được thư"}


def _fail(message: str, code: int = EXIT_CANNOT_RUN) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def _config(config_path: Path | None) -> Config:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits


def _validated(config: Config) -> Config:
    """The configuration after the command-line flags were applied, checked as a whole."""
    try:
        return config.validate()
    except ConfigError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits


def _setup_logging(config: Config) -> None:
    """Rotating log in the outbox; the library only logs, the command decides where logs go."""
    path = config.paths.log_path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=5, encoding="utf-8")
    except OSError:
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("pipeline")
    if not any(isinstance(h, logging.handlers.RotatingFileHandler) and h.baseFilename == handler.baseFilename
               for h in root.handlers):
        root.addHandler(handler)
    root.setLevel(logging.INFO)


config_option = click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
                             default=None, help="Configuration file (default: ./tonghop.toml if present).")
registry_option = click.option("--registry", type=click.Path(path_type=Path), default=None,
                               help=f"Registry workbook: units, aliases, allocated quotas [default: {DEFAULT_REGISTRY}].")
form_option = click.option("--form", "form_path", type=click.Path(path_type=Path), default=None,
                           help="Form definition (TOML) under schemas/.")
workers_option = click.option("--workers", type=click.IntRange(1, 64), default=None,
                              help="Isolated reader processes [default: 2].")
timeout_option = click.option("--timeout", type=click.FloatRange(0.1, 3600), default=None,
                              help="Seconds a single file may take to read [default: 30].")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tonghop")
def main() -> None:
    """tonghop — tổng hợp báo cáo phát triển đảng của các đơn vị trực thuộc Tỉnh đoàn."""


@main.command()
@click.option("--inbox", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder staff drop files in [default: inbox].")
@click.option("--outbox", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder runs are written to [default: outbox].")
@registry_option
@form_option
@config_option
@workers_option
@timeout_option
@click.option("--province", default=None, help="Province name printed on the report [default: Bình Dương].")
@click.option("--deadline", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Submissions after this day are flagged late.")
@click.option("--settle-seconds", type=click.FloatRange(0), default=None,
              help="Leave files modified less than this many seconds ago for the next run.")
@click.option("--force", is_flag=True, help="Run even when nothing changed since the last run.")
def run(inbox, outbox, registry, form_path, config_path, workers, timeout, province, deadline, settle_seconds,
        force) -> None:
    """Consolidate every file in the inbox into a new run folder in the outbox."""
    from pipeline.nightly import RunFailed, RunLocked, nightly_run

    config = _config(config_path)
    config = config.with_paths(inbox=inbox, outbox=outbox, registry=registry, form=form_path)
    config = _validated(config.with_report(workers=workers, timeout_seconds=timeout, province=province,
                                           deadline=deadline.date() if deadline else None,
                                           settle_seconds=settle_seconds))
    if not config.paths.inbox.is_dir():
        _fail(f"Không tìm thấy thư mục hộp thư: {config.paths.inbox}")
    _setup_logging(config)
    bar = _progress_bar()
    # A run builds hundreds of thousands of small acyclic objects; the cyclic collector only rescans them
    # (measured 15–23 % of a 10,000-file run). The process ends when the run does.
    gc.freeze()
    gc.disable()
    try:
        result = nightly_run(config, force=force, progress=bar.update if bar else None)
    except RunLocked:
        _fail(f"Đang có một lần tổng hợp khác chạy trên {config.paths.outbox}; lần này dừng lại. Hãy thử lại sau.",
              EXIT_LOCKED)
    except (RegistryError, FormDefinitionError, ConfigError, RunFailed) as exc:
        _fail(str(exc))
    except Exception as exc:  # a defect of the program: the operator gets a sentence, the log the traceback
        logging.getLogger("pipeline").exception("run failed unexpectedly")
        _fail(f"Lần tổng hợp dừng vì một lỗi không lường trước ({type(exc).__name__}: {exc}); chi tiết trong "
              f"{config.paths.log_path}. Hãy gửi tệp nhật ký đó cho người quản trị.")
    finally:
        gc.enable()
        gc.unfreeze()
        if bar:
            bar.close()
    for warning in result.warnings:
        click.echo(f"CẢNH BÁO: {warning}", err=True)
    for name in result.settling:
        click.echo(f"Để lần sau: \"{name}\" vừa được chép vào, có thể chưa chép xong.")
    if result.state == "unchanged":
        click.echo(f"Hộp thư không có gì thay đổi kể từ lần tổng hợp {result.previous_run}; không tạo kết quả mới.")
    else:
        c = result.consolidation
        units = c.registry.units
        accepted = sum(1 for u in units if c.unit_status(u.code) == "accepted")
        rejected = sum(1 for u in units if c.unit_status(u.code) == "rejected")
        click.echo(f"Đã tổng hợp {len(c.files)} tệp: {accepted}/{len(units)} đơn vị hợp lệ, "
                   f"{rejected} trả lại, {len(c.missing)} chưa nộp; {len(result.changes)} thay đổi.")
        click.echo(f"Kết quả: {result.folder}")
    for mail in result.mails:
        detail = f": {mail.error}" if mail.error else ""
        click.echo(f"Thư {mail.message_id}: {MAIL_STATE_TEXT.get(mail.state, mail.state)}{detail}")


class _Bar:
    def __init__(self) -> None:
        self.bar = None
        self.shown = 0

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label="Đang đọc tệp", file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.shown)
        self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def _progress_bar() -> _Bar | None:
    return _Bar() if sys.stderr.isatty() else None


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, dir_okay=False))
@registry_option
@form_option
@config_option
@workers_option
@timeout_option
def check(files: tuple[Path, ...], registry, form_path, config_path, workers, timeout) -> None:
    """Check files as they arrive: verdict and issues for each, nothing written."""
    from pipeline.intake import InboxFile, junk_reason
    from pipeline.isolation import IsolationSettings
    from pipeline.run import Options, process
    from pipeline.textnorm import display_name

    config = _config(config_path).with_paths(registry=registry, form=form_path)
    config = _validated(config.with_report(workers=workers, timeout_seconds=timeout))
    entries = []
    for path in files:
        st = path.stat()
        entries.append(InboxFile(path=path, name=display_name(path.name), size=st.st_size, mtime=st.st_mtime,
                                 junk_reason=junk_reason(display_name(path.name))))
    options = Options(registry=config.paths.registry, form=config.paths.form or DEFAULT_FORM,
                      deadline=config.report.deadline,
                      isolation=IsolationSettings(workers=config.report.workers,
                                                  timeout_seconds=config.report.timeout_seconds))
    try:
        consolidation = process(entries, options)
    except (RegistryError, FormDefinitionError) as exc:
        _fail(str(exc))
    names = {u.code: u.name for u in consolidation.registry.units}
    for outcome in consolidation.files:
        status = outcome.status
        if status == "superseded":  # several files of one unit checked together: each gets its own verdict
            status = "rejected" if outcome.has_errors else "accepted"
        unit = f"{names.get(outcome.unit, outcome.unit)} ({outcome.unit})" if outcome.unit else "không xác định"
        click.echo(f"{outcome.name}: {STATUS_TEXT[status]} — đơn vị: {unit}; "
                   f"{outcome.errors} lỗi, {outcome.warnings} cảnh báo")
        for issue in outcome.issues:
            if issue.code == "file_superseded":
                continue
            where = f"{issue.sheet}!{issue.cell}" if issue.sheet and issue.cell else (issue.cell or "-")
            click.echo(f"  {where:<18} {SEVERITY_TEXT[issue.severity]:<9} {issue.message}")


@main.command()
@click.option("--outbox", type=click.Path(path_type=Path, file_okay=False), default=None)
@click.option("--inbox", type=click.Path(path_type=Path, file_okay=False), default=None)
@config_option
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True, help="Runs to show.")
def status(outbox, inbox, config_path, limit) -> None:
    """Show the last runs, what is pending, and the state of the mail."""
    from pipeline.ledger import LedgerError
    from pipeline.status import installation_status

    config = _config(config_path).with_paths(outbox=outbox, inbox=inbox)
    try:
        report = installation_status(config, limit=limit)
    except LedgerError as exc:
        _fail(str(exc))
    if not report.runs:
        click.echo(f"Chưa có lần tổng hợp nào trong {config.paths.outbox}.")
    else:
        click.echo("Các lần tổng hợp gần nhất:")
        for run in report.runs:
            counts = run.counts
            line = (f"  {run.started_at[:19].replace('T', ' ')}  {run.state:<9} {run.name or '-':<20} "
                    f"hợp lệ {counts.get('accepted', 0)}, trả lại {counts.get('rejected', 0)}, "
                    f"chưa nộp {counts.get('missing', 0)}")
            if run.message:
                line += f"  ({run.message})"
            click.echo(line)
    click.echo("Đang chờ:")
    if report.inbox_changed is None:
        click.echo("  (không đọc được hộp thư)")
    elif report.inbox_changed:
        click.echo(f"  Hộp thư có thay đổi so với lần tổng hợp cuối ({report.inbox_files} tệp) — lần chạy tới sẽ "
                   "tổng hợp lại.")
    else:
        click.echo("  Hộp thư không thay đổi kể từ lần tổng hợp cuối.")
    for name in report.settling:
        click.echo(f"  Tệp vừa chép vào, để lần sau: {name}")
    click.echo("Thư:")
    if not report.mails:
        click.echo("  Chưa có thư nào.")
    for mail in report.mails:
        detail = f" — {mail.last_error}" if mail.last_error else ""
        click.echo(f"  {mail.updated_at[:19].replace('T', ' ')}  {mail.kind:<16} "
                   f"{MAIL_STATE_TEXT.get(mail.state, mail.state)} ({mail.attempts} lần gửi){detail}")


@main.command()
@click.option("--cron", "kind", flag_value="cron", help="A crontab line.")
@click.option("--systemd", "kind", flag_value="systemd", help="A systemd service and timer.")
@click.option("--windows", "kind", flag_value="windows", help="A schtasks command.")
@click.option("--at", "at", default="02:00", show_default=True, help="Time of day (HH:MM).")
@config_option
def schedule(kind, at, config_path) -> None:
    """Print a nightly schedule for this installation, ready to install."""
    from pipeline.status import schedule_text

    if kind is None:
        _fail("Hãy chọn một trong --cron, --systemd, --windows.")
    try:
        hour, minute = (int(part) for part in at.split(":"))
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError
    except ValueError:
        _fail(f"Giờ chạy không hợp lệ: {at} (dạng HH:MM).")
    config_file = config_path.resolve() if config_path else (Path.cwd() / "tonghop.toml")
    click.echo(schedule_text(kind, hour, minute, Path.cwd().resolve(), Path(sys.argv[0]).resolve()
                             if Path(sys.argv[0]).stem == "tonghop" else None,
                             config_file if config_file.exists() else None), nl=False)



from pipeline.templates import templates_command  # noqa: E402  (the command lives beside its library)

main.add_command(templates_command)


def entry() -> None:
    """The `tonghop` command: the click group, then an immediate exit.

    Everything a command writes is flushed and closed when it returns; tearing down the interpreter
    after a large run (freeing every object of it, and of pandas) would only add a quarter of a second
    or more before the shell gets its prompt back.
    """
    # A log that cannot be written (a full disk) must not print a traceback over the run's own words.
    logging.raiseExceptions = False
    try:
        main()
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 1
    os._exit(code)

"""Command line: parses options, calls the library, prints what it returns. Nothing else."""

from __future__ import annotations

import logging
import logging.handlers
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipeline import __version__
from pipeline.core.config import Config, ConfigError, load_config
from pipeline.core.files import write_file_atomic
from pipeline.core.form import DEFAULT_FORM, FormDefinitionError, load_form
from pipeline.core.registry import DEFAULT_REGISTRY, RegistryError, load_registry
from pipeline.core.textnorm import display_name
from pipeline.handout.demo import SAMPLE_INBOX, SAMPLE_TIMES, restore_received_times
from pipeline.handout.templates import DEFAULT_OUT, DEFAULT_PROVINCE, format_deadline, write_all
from pipeline.nightly import schedule as schedules
from pipeline.nightly.job import RunFailed, RunLocked, nightly_run
from pipeline.nightly.ledger import LedgerError
from pipeline.nightly.status import installation_status
from pipeline.parallel.pool import WorkersBroken, gc_paused
from pipeline.read.isolated import IsolationSettings
from pipeline.run import Options, process
from pipeline.stages.consolidate import RunSettings
from pipeline.stages.intake import InboxFile, junk_reason

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar  # what click.progressbar returns

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
registry_option = click.option(
    "--registry", type=click.Path(path_type=Path), default=None,
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
    # (see parallel.gc_paused). The process ends when the run does.
    try:
        with gc_paused():
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
        assert c is not None  # a completed run carries its consolidation
        units = c.registry.units
        accepted = sum(1 for u in units if c.unit_status(u.code) == "accepted")
        rejected = sum(1 for u in units if c.unit_status(u.code) == "rejected")
        files = len({str(o.path) for o in c.files})
        # Archives, saved mail and workbooks holding several forms give more submissions than files.
        submissions = f" ({len(c.files)} bài nộp)" if len(c.files) != files else ""
        click.echo(f"Đã tổng hợp {files} tệp{submissions}: {accepted}/{len(units)} đơn vị hợp lệ, "
                   f"{rejected} trả lại, {len(c.missing)} chưa nộp; {len(result.changes)} thay đổi.")
        click.echo(f"Kết quả: {result.folder}")
    for mail in result.mails:
        detail = f": {mail.error}" if mail.error else ""
        click.echo(f"Thư {mail.message_id}: {MAIL_STATE_TEXT.get(mail.state, mail.state)}{detail}")


@main.command()
@click.option("--inbox", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="The sample inbox [default: inbox].")
@click.option("--outbox", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder the run is written to [default: outbox].")
@click.pass_context
def demo(ctx: click.Context, inbox: Path | None, outbox: Path | None) -> None:
    """Consolidate the bundled sample inbox (what `make demo` does): its files get back their received times."""

    folder = inbox or SAMPLE_INBOX
    try:
        restored = restore_received_times(folder, SAMPLE_TIMES)
    except (OSError, ValueError, KeyError) as exc:
        _fail(f"Không chuẩn bị được hộp thư mẫu {folder} ({exc}).")
    if restored.missing:
        _fail(f"Hộp thư mẫu {folder} thiếu {len(restored.missing)} tệp: {', '.join(restored.missing)}.")
    click.echo(f"Hộp thư mẫu: đã đặt lại thời gian nhận của {restored.files} tệp trong {folder}.")
    ctx.invoke(run, inbox=folder, outbox=outbox or Path("outbox"))


class _Bar:
    def __init__(self) -> None:
        self.bar: ProgressBar[int] | None = None
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

    config = _config(config_path).with_paths(registry=registry, form=form_path)
    config = _validated(config.with_report(workers=workers, timeout_seconds=timeout))
    entries = []
    for path in files:
        st = path.stat()
        entries.append(InboxFile(path=path, name=display_name(path.name), size=st.st_size, mtime=st.st_mtime,
                                 junk_reason=junk_reason(display_name(path.name))))
    options = Options(registry=config.paths.registry, form=config.paths.form or DEFAULT_FORM,
                      settings=RunSettings(deadline=config.report.deadline),
                      isolation=IsolationSettings(workers=config.report.workers,
                                                  timeout_seconds=config.report.timeout_seconds))
    try:
        consolidation = process(entries, options)
    except (RegistryError, FormDefinitionError) as exc:
        _fail(str(exc))
    except WorkersBroken as exc:
        _fail(exc.sentence)
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
@click.option("--windows", "kind", flag_value="windows",
              help="A Task Scheduler task: writes its XML and a .cmd wrapper, prints the schtasks command.")
@click.option("--at", "at", default="02:00", show_default=True, help="Time of day (HH:MM).")
@click.option("--every", "every", type=click.IntRange(1, 1440), default=None,
              help="Run every N minutes all day instead of once a night.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder for the Windows task files [default: the current folder].")
@click.option("--install", is_flag=True, help="With --windows, on Windows: register the task now.")
@config_option
def schedule(kind, at, every, out_dir, install, config_path) -> None:
    """Print (and for Windows write) a schedule for this installation, ready to install."""

    if kind is None:
        _fail("Hãy chọn một trong --cron, --systemd, --windows.")
    try:
        hour, minute = (int(part) for part in at.split(":"))
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError
    except ValueError:
        _fail(f"Giờ chạy không hợp lệ: {at} (dạng HH:MM).")
    if install and kind != "windows":
        _fail("--install chỉ dùng cùng --windows.")
    config = _config(config_path)
    workdir = Path.cwd().resolve()
    config_file = config_path.resolve() if config_path else (workdir / "tonghop.toml")
    argv0 = Path(sys.argv[0])
    executable = argv0.resolve() if argv0.stem.lower() == "tonghop" else None
    command = schedules.run_command(executable, config_file if config_file.exists() else None)
    log_file = (workdir / config.paths.outbox).resolve() / schedules.TASK_LOG
    plan = schedules.Schedule(hour, minute, workdir, command, log_file, every_minutes=every or 0)
    if kind == "cron":
        click.echo(schedules.cron_text(plan), nl=False)
        return
    if kind == "systemd":
        click.echo(schedules.systemd_text(plan), nl=False)
        return
    folder = (out_dir or workdir).resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path, data in schedules.windows_files(plan, folder).items():
            write_file_atomic(path, data)
    except OSError as exc:
        _fail(f"Không ghi được tệp lịch chạy vào {folder} ({exc.strerror or exc}).")
    register = schedules.schtasks_command(folder / schedules.TASK_XML)
    click.echo(f"Đã ghi {folder / schedules.TASK_XML} và {folder / schedules.TASK_CMD}.")
    click.echo("Đăng ký lịch chạy (mở PowerShell hoặc Command Prompt, chạy một lần):")
    click.echo("  " + subprocess.list2cmdline(register))
    if install:
        if sys.platform != "win32":
            _fail("--install chỉ chạy được trên Windows; trên máy này hãy dùng --cron hoặc --systemd.")
        done = subprocess.run(register, capture_output=True, text=True)
        if done.returncode != 0:
            _fail(f"schtasks không đăng ký được lịch chạy: {(done.stderr or done.stdout).strip()}")
        click.echo("Đã đăng ký lịch chạy \"tonghop\" trong Task Scheduler.")


@main.command("templates")
@click.option("--registry", type=click.Path(path_type=Path, dir_okay=False), default=DEFAULT_REGISTRY,
              show_default=True, help="Registry workbook: units and allocated quotas to fill in.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_OUT,
              show_default=True, help="Folder for the per-unit copies (the blank copy goes to its parent "
                                      "unless --out is given).")
@click.option("--form", "form_path", type=click.Path(path_type=Path, dir_okay=False), default=DEFAULT_FORM,
              show_default=True, help="Form definition (TOML) under schemas/.")
@click.option("--deadline", default=None, metavar="YYYY-MM-DD",
              help="Due date printed on the instructions sheet, e.g. 2024-02-10.")
@click.option("--province", default=DEFAULT_PROVINCE, show_default=True, help="Province name printed on the form.")
@click.pass_context
def templates_command(ctx: click.Context, registry: Path, out_dir: Path, form_path: Path, deadline: str | None,
                      province: str) -> None:
    """Write one protected copy of the form per registry unit, plus a blank copy."""
    try:
        format_deadline(deadline)
        form = load_form(form_path)
        units = load_registry(registry)
    except (ValueError, RegistryError, FormDefinitionError) as exc:  # the message is already Vietnamese
        _fail(str(exc))
    out_given = ctx.get_parameter_source("out_dir") is not click.core.ParameterSource.DEFAULT
    blank_dir = out_dir if out_given else out_dir.parent
    written = write_all(out_dir, form, units, deadline, province, blank_dir=blank_dir)
    click.echo(f"Đã ghi {len(written) - 1} biểu mẫu đơn vị vào thư mục {out_dir}.")
    click.echo(f"Biểu mẫu trống (chưa ghi đơn vị): {written[-1]}")


def _safe_output() -> None:
    """Whatever the console's code page (cp1252, cp1258 on a Vietnamese Windows) or a redirected file's
    encoding, printing never raises: UTF-8 where the output is a file or pipe (a .bat with "> log.txt",
    Task Scheduler), the console's own encoding otherwise, and a replacement mark for what it cannot show."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:
            continue
        try:
            interactive = stream.isatty()
        except (OSError, ValueError):
            interactive = False
        try:
            if interactive:
                reconfigure(errors="replace")
            else:
                reconfigure(encoding="utf-8", errors="replace")
        except (OSError, ValueError):
            pass


def entry() -> None:
    """The `tonghop` command: the click group, then an immediate exit.

    Everything a command writes is flushed and closed when it returns; tearing down the interpreter
    after a large run (freeing every object of it, and of pandas) would only add a quarter of a second
    or more before the shell gets its prompt back.
    """
    # A log that cannot be written (a full disk) must not print a traceback over the run's own words.
    logging.raiseExceptions = False
    _safe_output()
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

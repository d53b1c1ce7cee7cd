"""The nightly job: one locked, idempotent pass from inbox to outbox to mailbox.

Nobody watches it, so every step is safe to repeat: a run with an unchanged inbox writes and sends
nothing; a mail is built once per run with a fixed Message-ID, kept as a .eml in the run folder,
and moved through built → sending → sent in the ledger, so a failed send is retried by the next
run and a sent one is never sent again.
"""

from __future__ import annotations

import errno
import functools
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from email import message_from_bytes, policy
from pathlib import Path

from filelock import FileLock, Timeout

from pipeline.core.config import Config
from pipeline.core.form import DEFAULT_FORM, FormDefinitionError, load_form
from pipeline.core.formatting import format_number
from pipeline.core.registry import RegistryError
from pipeline.mail.notify import (
    MailError,
    MailSettings,
    MailTooLarge,
    Summary,
    build_message,
    build_unit_feedback_message,
    send_message,
    write_eml,
)
from pipeline.nightly.fingerprint import fingerprint
from pipeline.nightly.ledger import Ledger, LedgerError, locked_message
from pipeline.outputs.feedback import FEEDBACK_FOLDER, feedback_file_name, grids_from_reads, grids_needed
from pipeline.outputs.runfolder import (
    begin_run_folder,
    discard_run_folder,
    publish_run_folder,
    start_workbook,
    write_exports,
)
from pipeline.parallel.pool import WorkersBroken
from pipeline.read.isolated import IsolationSettings, ReaderPool
from pipeline.run import Options, process
from pipeline.stages.changes import Change, diff, snapshot_of
from pipeline.stages.consolidate import Consolidation, RunSettings
from pipeline.stages.intake import InboxFile, scan

log = logging.getLogger(__name__)

EXIT_LOCKED = 75  # EX_TEMPFAIL: another run holds the lock; cron may simply try again later
REPORT_EML = "thu_bao_cao.eml"


class RunLocked(RuntimeError):
    """Another run holds the outbox lock."""


@dataclass
class MailOutcome:
    message_id: str
    kind: str
    state: str
    error: str = ""


@dataclass
class NightlyResult:
    state: str  # "completed" | "unchanged"
    folder: Path | None = None
    consolidation: Consolidation | None = None
    changes: list[Change] = field(default_factory=list)
    settling: list[str] = field(default_factory=list)  # files still being copied, left for the next run
    mails: list[MailOutcome] = field(default_factory=list)
    previous_run: str = ""
    warnings: list[str] = field(default_factory=list)  # Vietnamese; things the operator must know


class RunFailed(RuntimeError):
    """The run could not be carried out; the message is one Vietnamese sentence saying what to do.
    The details (the exception and its traceback) are in the log."""


def _lock(outbox: Path):

    outbox.mkdir(parents=True, exist_ok=True)
    return FileLock(str(outbox / "tonghop.lock"), timeout=0)


def check_layout(config: Config) -> None:
    """Refuse folder layouts that would make a run read its own outputs as submissions."""
    inbox, outbox = config.paths.inbox.resolve(), config.paths.outbox.resolve()
    if outbox == inbox or inbox in outbox.parents:
        raise RunFailed(f"Thư mục kết quả {config.paths.outbox} nằm trong hộp thư {config.paths.inbox}: lần chạy sẽ "
                        f"đọc lại chính các tệp nó đã ghi (bản phản hồi, bảng tổng hợp) như bài nộp của đơn vị. Hãy "
                        f"chọn thư mục kết quả ở ngoài hộp thư (--outbox hoặc [paths] outbox).")


def nightly_run(config: Config, *, force: bool = False, now: datetime | None = None,
                progress: Callable[[int, int], None] | None = None,
                on_lock: Callable[[], None] | None = None) -> NightlyResult:
    """Run once. Raises RunLocked when another run is in progress, RunFailed (Vietnamese, details
    logged) when the run cannot be carried out: a folder that cannot be written, a full disk, a
    ledger held by another program."""
    try:
        return _nightly_run(config, force=force, now=now, progress=progress, on_lock=on_lock)
    except (RunLocked, RunFailed, RegistryError, FormDefinitionError):
        raise
    except LedgerError as exc:
        log.error("run not possible: %s", exc)
        raise RunFailed(str(exc)) from exc
    except WorkersBroken as exc:
        log.error("run stopped, no reader could work: %s", exc)
        raise RunFailed(exc.sentence) from exc
    except (OSError, sqlite3.Error) as exc:
        log.exception("run failed")
        raise RunFailed(failure_sentence(exc, config)) from exc


def failure_sentence(exc: BaseException, config: Config) -> str:
    """One Vietnamese sentence for an operating-system or ledger failure, saying what to do."""
    log_path = config.paths.log_path
    if isinstance(exc, sqlite3.Error):
        if "locked" in str(exc) or "busy" in str(exc):
            return locked_message(config.paths.ledger_path)
        return (f"Sổ ghi {config.paths.ledger_path} báo lỗi ({exc}); lần chạy dừng lại. Chi tiết trong {log_path}.")
    where = getattr(exc, "filename", None) or config.paths.outbox
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return (f"Ổ đĩa đã đầy, không ghi được {where}; hãy giải phóng dung lượng rồi chạy lại "
                f"(chi tiết trong {log_path}).")
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"Không có quyền ghi vào {where}; hãy cấp quyền ghi cho thư mục kết quả hoặc chọn thư mục khác "
                f"(--outbox) rồi chạy lại (chi tiết trong {log_path}).")
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"Không ghi hoặc đọc được {where} ({reason}); lần chạy dừng lại. Chi tiết trong {log_path}."


def _nightly_run(config: Config, *, force: bool, now: datetime | None, progress: Callable[[int, int], None] | None,
                 on_lock: Callable[[], None] | None) -> NightlyResult:

    check_layout(config)
    outbox = config.paths.outbox
    lock = _lock(outbox)
    try:
        lock.acquire()
    except Timeout:
        raise RunLocked(str(outbox)) from None
    try:
        if on_lock is not None:
            on_lock()
        ledger, warning = Ledger.open_or_replace(config.paths.ledger_path)
        if warning:
            log.error("%s", warning)
        with ledger:
            runs, abandoned, retried = ledger.recover_interrupted()
            if runs or abandoned or retried:
                log.warning("interrupted earlier runs: %d run(s) marked interrupted, %d mail(s) abandoned, "
                            "%d mail(s) to send again", runs, abandoned, retried)
            result = _run_locked(config, ledger, force=force, now=now or datetime.now(), progress=progress)
            result.warnings[:0] = [warning] if warning else []
            result.mails.extend(deliver_pending(config, ledger))
            return result
    finally:
        lock.release()


def _run_locked(config: Config, ledger: Ledger, *, force: bool, now: datetime,
                progress: Callable[[int, int], None] | None) -> NightlyResult:
    form_path = config.paths.form or DEFAULT_FORM
    form = load_form(form_path)
    try:
        everything = scan(config.paths.inbox)
    except OSError as exc:
        message = (f"Không đọc được hộp thư {config.paths.inbox} ({exc.strerror or exc}); hãy kiểm tra thư mục và "
                   f"quyền đọc rồi chạy lại.")
        ledger.record_failed_run(message)
        raise RunFailed(message) from exc
    horizon = now.timestamp() - config.report.settle_seconds
    files: list[InboxFile] = []
    copying: list[InboxFile] = []
    for entry in everything:
        (files if entry.mtime <= horizon or entry.junk_reason else copying).append(entry)
    settling = [entry.name for entry in copying]
    if settling:
        log.info("leaving %d file(s) still being copied for the next run: %s", len(settling), settling)
    stamp = fingerprint(files, config, form_path)
    last = ledger.last_completed()
    if last is not None and last.fingerprint == stamp and not force:
        log.info("inbox unchanged since run %s; nothing written", last.name)
        return NightlyResult(state="unchanged", settling=settling, previous_run=last.name)
    run_id = ledger.start_run(stamp)
    try:
        report = config.report
        settings = RunSettings(province=report.province, created=now, deadline=report.deadline,
                               unit_sheet_limit=report.unit_sheet_limit, feedback_limit=report.feedback_limit)
        options = Options(registry=config.paths.registry, form=form_path, settings=settings,
                          isolation=IsolationSettings(workers=report.workers, timeout_seconds=report.timeout_seconds))
        # The registry loads while the workers start reading (it is in the fingerprint: unchanged runs skip it).
        consolidation = process(files, options, None, form, progress=progress)
        previous = ledger.snapshot(last.id) if last is not None else None
        current = snapshot_of(consolidation)
        consolidation = replace(consolidation, changes=diff(previous, consolidation, current))
        mail_plan: list[PlannedMail] = []
        run = begin_run_folder(config.paths.outbox, now)
        try:
            # The sheets feedback copies show but the first reading did not keep: read again, isolated
            # like the first time, and kept only where the bytes are still those that were judged.
            needed = grids_needed(consolidation)
            reads = []
            if needed:
                with ReaderPool(form, options.isolation) as pool:
                    reads = pool.read_all([o.path for o in needed])
            grids = grids_from_reads(needed, reads)
            with start_workbook(consolidation, run.staging):  # built in a child process for large runs
                write_exports(consolidation, run.staging, grids, run.name)
                # Saved before the run folder exists; only completed runs' snapshots are compared with.
                ledger.save_snapshot(run_id, current)
                ledger.record_files((o.sha256, o.name, o.size, o.mtime, o.unit, o.status)
                                    for o in consolidation.files)
            if consolidation.changes:
                mail_plan.extend(build_mails(config, consolidation, run.staging, run.name, stamp))
            written = run.elapsed()
            folder = publish_run_folder(run)
        except BaseException:
            discard_run_folder(run)
            raise
        consolidation = replace(consolidation, timings={**consolidation.timings, "write": written})
        # The run and its mails are recorded together: until this commits, no mail of this run exists
        # for anyone to send, and a run that dies here is re-run (and mails) once, by the next run.
        default_state = "built" if config.mail.enabled else "written"
        ledger.complete_run(run_id, name=folder.name, counts=_counts(consolidation), folder=str(folder),
                            outputs=sorted(p.name for p in folder.iterdir()),
                            mails=[(m.message_id, m.kind, m.recipients, str(folder / m.eml) if m.eml else "",
                                    m.state or default_state, m.error) for m in mail_plan])
        log.info("run %s: %d files; stages %s", folder.name, len(consolidation.files),
                 ", ".join(f"{k} {v:.3f}s" for k, v in consolidation.timings.items()))
    except BaseException as exc:
        try:
            ledger.finish_run(run_id, "failed", message=f"{type(exc).__name__}: {exc}")
        except sqlite3.Error:
            log.exception("could not record the failed run %d", run_id)  # the next run marks it interrupted
        raise
    return NightlyResult(state="completed", folder=folder, consolidation=consolidation,
                         changes=consolidation.changes, settling=settling,
                         previous_run=last.name if last is not None else "")


def _counts(consolidation: Consolidation) -> dict[str, int]:
    counts = {s: 0 for s in ("accepted", "rejected", "superseded", "ignored")}
    for outcome in consolidation.files:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    counts["missing"] = len(consolidation.missing)
    counts["units"] = len(consolidation.registry.units)
    return counts


# ---------------------------------------------------------------- mail

def message_id(run_name: str, stamp: str, kind: str, sender: str) -> str:
    domain = sender.rsplit("@", 1)[-1] if "@" in sender else "tonghop.local"
    return f"<tonghop.{run_name}.{kind}.{stamp[:16]}@{domain}>"


@dataclass
class PlannedMail:
    message_id: str
    kind: str
    recipients: str
    eml: str  # path inside the run folder; empty when the message could not be built
    state: str = ""  # "" lets the caller choose built/written; "too_large" is final
    error: str = ""


def build_mails(config: Config, consolidation: Consolidation, staging: Path, run_name: str,
                stamp: str) -> list[PlannedMail]:
    """Build the report mail (and unit feedback mails) as .eml files inside the run folder being written."""

    settings = mail_settings(config)
    planned = []
    report_id = message_id(run_name, stamp, "report", settings.sender)
    recipients = ", ".join([*settings.to, *settings.cc])
    try:
        message = build_message(settings, summary_for_mail(consolidation, run_name), staging / "tong_hop.xlsx",
                                report_id)
    except MailTooLarge as exc:
        log.error("report mail not built: %s", exc)
        planned.append(PlannedMail(report_id, "report", recipients, "", "too_large", str(exc)))
    else:
        write_eml(message, staging / REPORT_EML)
        planned.append(PlannedMail(report_id, "report", recipients, REPORT_EML))
    if config.mail.feedback_to_units:
        for code, outcome in consolidation.submissions.items():
            copy = staging / FEEDBACK_FOLDER / feedback_file_name(code)
            unit = consolidation.registry.unit(code)
            if not copy.exists() or not unit.email:
                continue
            feedback_id = message_id(run_name, stamp, f"feedback-{code}", settings.sender)
            try:
                feedback = build_unit_feedback_message(settings, consolidation.province, unit.name, unit.email,
                                                       copy, (outcome.errors, outcome.warnings), feedback_id)
            except MailError as exc:  # too large, or the registry's email cell holds no usable address
                state = "too_large" if isinstance(exc, MailTooLarge) else "failed_build"
                planned.append(PlannedMail(feedback_id, f"feedback:{code}", unit.email, "", state, str(exc)))
                continue
            relative = f"{FEEDBACK_FOLDER}/{Path(feedback_file_name(code)).stem}.eml"
            write_eml(feedback, staging / relative)
            planned.append(PlannedMail(feedback_id, f"feedback:{code}", unit.email, relative))
    return planned


def mail_settings(config: Config):

    mail = config.mail
    return MailSettings(host=mail.host, port=mail.port, security=mail.security, user=mail.user,
                        password=mail.password(), sender=mail.sender or "tonghop@localhost", to=list(mail.to),
                        cc=list(mail.cc), max_bytes=mail.max_bytes, retries=mail.retries,
                        backoff_seconds=mail.backoff_seconds, timeout_seconds=mail.timeout_seconds)


def summary_for_mail(consolidation: Consolidation, run_name: str):

    c = consolidation
    names = {u.code: u.name for u in c.registry.units}
    scans = c.scan_only
    rejected = [(code, names.get(code, code), f"{o.errors} lỗi") for code, o in c.submissions.items()
                if o.status == "rejected"]
    quota: dict[int, tuple[int | None, int | None, float | None, str]] = {}
    for year, figures in c.province_quotas().items():
        if not figures.units_allocated:
            quota[year] = (None, None, None, "")  # "chưa giao chỉ tiêu"
            continue
        # Allocated, admitted and ratio over the same units; the note says which, and shows the
        # quota of every unit apart, labelled, when it differs.
        note = figures.basis
        if figures.allocated_all != figures.allocated:
            label = figures.allocated_all_label(format_number(figures.allocated_all))
            note += "; " + label[:1].lower() + label[1:]
        if figures.covered:
            quota[year] = (figures.allocated, figures.admitted, figures.ratio, note)
        else:
            quota[year] = (None, None, None, note)  # no accepted unit with a quota: nothing to add up
    return Summary(
        province=c.province, run_name=run_name, created=c.created,
        units_total=len(c.registry.units), units_received=len(c.submissions),
        units_accepted=sum(1 for o in c.submissions.values() if o.status == "accepted"),
        units_rejected=len(rejected),
        units_missing=[names.get(code, code) + (" (chỉ gửi bản chụp/bản ký, chưa có biểu mẫu)" if code in scans else "")
                       for code in c.missing],
        rejected=rejected,
        totals={year: {m: c.totals[(year, m)] for m in c.form.metric_keys} for year in c.form.years},
        metric_labels={m.key: m.label for m in c.form.metrics}, quota=quota,
        changes=[change.text for change in c.changes],
        late=[names.get(code, code) for code in c.late_units()],
    )


def deliver_pending(config: Config, ledger: Ledger) -> list[MailOutcome]:
    """Send every built or failed message of a completed run once. A message is marked 'unknown' the
    moment it is handed to a server, so one that a server may hold is never sent again, while one
    whose sending stopped before that (left 'sending') is sent again by the next run."""
    if not config.mail.enabled:
        return []


    settings = mail_settings(config)
    outcomes = []
    for record in ledger.mails_to_send():
        path = Path(record.eml_path)
        try:
            message = message_from_bytes(path.read_bytes(), policy=policy.SMTP)
        except OSError as exc:
            ledger.set_mail_state(record.message_id, "failed", f"không đọc được {path}: {exc}")
            outcomes.append(MailOutcome(record.message_id, record.kind, "failed", str(exc)))
            continue
        ledger.set_mail_state(record.message_id, "sending", attempt=True)
        started = time.monotonic()
        try:
            send_message(settings, message,
                         on_handover=functools.partial(ledger.set_mail_state, record.message_id, "unknown"))
        except MailError as exc:
            # A message that may have reached anyone is "unknown": sending it again could deliver it twice.
            state = "failed" if exc.resend_safe else "unknown"
            ledger.set_mail_state(record.message_id, state, str(exc))
            log.warning("mail %s not sent (%s): %s", record.message_id, state, exc)
            outcomes.append(MailOutcome(record.message_id, record.kind, state, str(exc)))
            continue
        ledger.set_mail_state(record.message_id, "sent")
        log.info("mail %s sent in %.1f s", record.message_id, time.monotonic() - started)
        outcomes.append(MailOutcome(record.message_id, record.kind, "sent"))
    return outcomes

"""Command line: parses options, calls the library, prints what it returns. Nothing else."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from pipeline import __version__
from pipeline.form import DEFAULT_FORM, FormDefinitionError
from pipeline.registry import DEFAULT_REGISTRY, RegistryError

EXIT_CANNOT_RUN = 2

STATUS_TEXT = {
    "accepted": "HỢP LỆ",
    "rejected": "TRẢ LẠI",
    "superseded": "ĐÃ CÓ TỆP MỚI HƠN",
    "ignored": "BỎ QUA",
    "missing": "CHƯA NỘP",
}
SEVERITY_TEXT = {"error": "lỗi", "warning": "cảnh báo", "info": "thông tin"}


def _options(registry: Path, form: Path, workers: int, timeout: float, isolate: bool):
    from pipeline.isolation import IsolationSettings
    from pipeline.run import Options

    return Options(registry=registry, form=form, isolate=isolate,
                   isolation=IsolationSettings(workers=workers, timeout_seconds=timeout))


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(EXIT_CANNOT_RUN)


registry_option = click.option("--registry", type=click.Path(path_type=Path), default=DEFAULT_REGISTRY,
                               show_default=True, help="Registry workbook: units, aliases, allocated quotas.")
form_option = click.option("--form", "form_path", type=click.Path(path_type=Path), default=DEFAULT_FORM,
                           show_default=True, help="Form definition (TOML) under schemas/.")
workers_option = click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
                              help="Isolated reader processes.")
timeout_option = click.option("--timeout", type=click.FloatRange(0.1), default=30.0, show_default=True,
                              help="Seconds a single file may take to read.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tonghop")
def main() -> None:
    """tonghop — tổng hợp báo cáo phát triển đảng của các đơn vị trực thuộc Tỉnh đoàn."""


@main.command()
@click.option("--inbox", type=click.Path(path_type=Path, file_okay=False), default=Path("inbox"), show_default=True)
@click.option("--outbox", type=click.Path(path_type=Path, file_okay=False), default=Path("outbox"), show_default=True)
@registry_option
@form_option
@workers_option
@timeout_option
@click.option("--province", default="Bình Dương", show_default=True, help="Province name printed on the report.")
def run(inbox: Path, outbox: Path, registry: Path, form_path: Path, workers: int, timeout: float,
        province: str) -> None:
    """Consolidate every file in the inbox into a new run folder in the outbox."""
    from pipeline.run import process_inbox, write_run

    if not inbox.is_dir():
        _fail(f"Không tìm thấy thư mục hộp thư: {inbox}")
    started = datetime.now()
    try:
        consolidation = process_inbox(inbox, _options(registry, form_path, workers, timeout, True))
    except (RegistryError, FormDefinitionError) as exc:
        _fail(str(exc))
    consolidation.province = province
    consolidation.created = started
    folder = write_run(consolidation, outbox, started)
    units = consolidation.registry.units
    accepted = sum(1 for u in units if consolidation.unit_status(u.code) == "accepted")
    rejected = sum(1 for u in units if consolidation.unit_status(u.code) == "rejected")
    click.echo(f"Đã tổng hợp {len(consolidation.files)} tệp: {accepted}/{len(units)} đơn vị hợp lệ, "
               f"{rejected} trả lại, {len(consolidation.missing)} chưa nộp.")
    click.echo(f"Kết quả: {folder}")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, dir_okay=False))
@registry_option
@form_option
@workers_option
@timeout_option
def check(files: tuple[Path, ...], registry: Path, form_path: Path, workers: int, timeout: float) -> None:
    """Check files as they arrive: verdict and issues for each, nothing written."""
    from pipeline.intake import InboxFile, junk_reason
    from pipeline.run import process
    from pipeline.textnorm import nfc

    entries = []
    for path in files:
        st = path.stat()
        entries.append(InboxFile(path=path, name=nfc(path.name), size=st.st_size, mtime=st.st_mtime,
                                 junk_reason=junk_reason(nfc(path.name))))
    try:
        consolidation = process(entries, _options(registry, form_path, workers, timeout, True))
    except (RegistryError, FormDefinitionError) as exc:
        _fail(str(exc))
    names = {u.code: u.name for u in consolidation.registry.units}
    for outcome in consolidation.files:
        status = "accepted" if outcome.status == "superseded" and not outcome.has_errors else outcome.status
        status = "rejected" if outcome.status == "superseded" and outcome.has_errors else status
        unit = f"{names.get(outcome.unit, outcome.unit)} ({outcome.unit})" if outcome.unit else "không xác định"
        click.echo(f"{outcome.name}: {STATUS_TEXT[status]} — đơn vị: {unit}; "
                   f"{outcome.errors} lỗi, {outcome.warnings} cảnh báo")
        for issue in outcome.issues:
            if issue.code == "file_superseded":
                continue
            where = f"{issue.sheet}!{issue.cell}" if issue.sheet and issue.cell else (issue.cell or "-")
            click.echo(f"  {where:<18} {SEVERITY_TEXT[issue.severity]:<9} {issue.message}")

"""Nightly operation: configuration, ledger, idempotency, locking, change tracking, deadline."""

from __future__ import annotations

import email
import email.policy
import os
import sqlite3
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

import pytest
from builders import FormSpec, default_values, write_openpyxl
from click.testing import CliRunner
from conftest import REGISTRY, read_csv, set_mtime
from openpyxl import load_workbook

from pipeline.cli import main
from pipeline.core.config import Config, ConfigError, PathsConfig, ReportConfig, load_config
from pipeline.nightly.ledger import LedgerError, MIGRATIONS, Ledger
from pipeline.nightly.job import RunLocked, nightly_run

RECEIVED = datetime(2024, 2, 8, 9, 30).timestamp()


def unit_file(inbox: Path, registry, code: str, line: str, name: str, changes=None, mtime=RECEIVED) -> Path:
    values = default_values(code, quotas={y: registry.quotas[(code, y)] for y in (2021, 2022, 2023)})
    for (year, metric), value in (changes or {}).items():
        values[year][metric] = value
    path = write_openpyxl(FormSpec(unit_line=line, values=values), inbox / name)
    return set_mtime(path, mtime)


@pytest.fixture
def filled_inbox(inbox, registry):
    unit_file(inbox, registry, "DT", "BCH HUYỆN ĐOÀN DẦU TIẾNG", "Dầu Tiếng.xlsx")
    unit_file(inbox, registry, "PG", "BCH HUYỆN ĐOÀN PHÚ GIÁO", "Phú Giáo.xlsx",
              {(2022, "admitted_pupils"): "hai"})
    return inbox


def config_for(inbox: Path, outbox: Path, **report) -> Config:
    return Config(paths=PathsConfig(inbox=inbox, outbox=outbox, registry=REGISTRY), report=ReportConfig(**report))


def run_folders(outbox: Path) -> list[Path]:
    return sorted(p for p in outbox.iterdir() if p.is_dir() and not p.name.startswith("."))


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


# ---------------------------------------------------------------- configuration

def test_config_file_is_read_and_flags_override(tmp_path, filled_inbox, monkeypatch):
    outbox = tmp_path / "ra"
    (tmp_path / "tonghop.toml").write_text(
        f'[paths]\ninbox = "{filled_inbox}"\noutbox = "ra"\nregistry = "{REGISTRY}"\n'
        '[report]\nprovince = "Bình Dương"\ndeadline = 2024-02-10\nsettle_seconds = 0\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    config = load_config()
    assert config.paths.outbox == tmp_path / "ra" and config.report.deadline == date(2024, 2, 10)
    result = cli("run")
    assert result.exit_code == 0, result.output
    assert len(run_folders(outbox)) == 1
    other = tmp_path / "khac"
    result = cli("run", "--outbox", str(other))
    assert result.exit_code == 0, result.output
    assert len(run_folders(other)) == 1 and len(run_folders(outbox)) == 1


@pytest.mark.parametrize(("text", "needle"), [
    ("[report]\nsettle_seconds = \"hai phút\"\n", "settle_seconds"),
    ("[mail]\nsecurity = \"tls\"\n", "security"),
    ("[mail]\nhost = \"smtp.example.vn\"\nto = [\"a@b\"]\n", "sender"),
    ("[paths]\ninbox = 3\n", "inbox"),
    ("[giay_to]\nx = 1\n", "giay_to"),
    ("[report\n", "TOML"),
])
def test_bad_configuration_is_named(tmp_path, text, needle):
    path = tmp_path / "tonghop.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=needle):
        load_config(path)
    result = cli("run", "--config", str(path))
    assert result.exit_code == 2 and needle in result.output


def test_password_comes_only_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "tonghop.toml"
    path.write_text('[mail]\nhost = "smtp.example.vn"\nsender = "a@b"\nto = ["c@d"]\npassword_env = "MAT_KHAU"\n',
                    encoding="utf-8")
    monkeypatch.setenv("MAT_KHAU", "bí mật")
    assert load_config(path).mail.password() == "bí mật"
    path.write_text('[mail]\npassword = "lộ"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="password"):
        load_config(path)


# ---------------------------------------------------------------- ledger

def test_ledger_is_a_versioned_wal_database(tmp_path):
    path = tmp_path / "so.sqlite"
    with Ledger(path) as ledger:
        assert ledger.version == len(MIGRATIONS)
        assert ledger.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert ledger.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with Ledger(path) as again:  # reopening migrates nothing and keeps the version
        assert again.version == len(MIGRATIONS)
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    raw.close()
    with pytest.raises(LedgerError, match="phiên bản tonghop mới hơn"):
        Ledger(path)


@pytest.mark.parametrize("units", [0, 1, 2_381])  # 2,381 units × 3 years × 7 metrics crosses batch edges
def test_snapshot_survives_the_ledger_exactly(tmp_path, units):
    from pipeline.stages.changes import Snapshot

    metrics = ("members_total", "outstanding_members", "quota_assigned", "admitted_pupils", "admitted_students",
               "admitted_workers_state", "admitted_workers_private")
    snapshot = Snapshot(
        values={(f"U{u:05d}", year, metric): u * 7 + year % 10 for u in range(units) for year in (2021, 2022, 2023)
                for metric in metrics},
        units={f"U{u:05d}": ("accepted", f"Đơn vị {u}.xlsx", f"{u:064x}") for u in range(units)},
        issues={(f"U{u:05d}", "value_blank", "D12", "warning", "Ô D12 để trống") for u in range(0, units, 97)},
    )
    with Ledger(tmp_path / "so.sqlite") as ledger:
        run_id = ledger.start_run("fingerprint")
        ledger.save_snapshot(run_id, snapshot)
    with Ledger(tmp_path / "so.sqlite") as ledger:
        assert ledger.snapshot(run_id) == snapshot


def test_ledger_records_files_and_runs(filled_inbox, outbox):
    result = nightly_run(config_for(filled_inbox, outbox))
    assert result.state == "completed"
    with Ledger(outbox / "tonghop.sqlite") as ledger:
        runs = ledger.recent_runs()
        assert [(r.state, r.name) for r in runs] == [("completed", result.folder.name)]
        assert runs[0].counts["accepted"] == 1 and runs[0].counts["rejected"] == 1
        rows = {r["name"]: dict(r) for r in ledger.db.execute("SELECT * FROM files")}
    assert rows["Dầu Tiếng.xlsx"]["unit"] == "DT" and rows["Dầu Tiếng.xlsx"]["verdict"] == "accepted"
    assert rows["Phú Giáo.xlsx"]["verdict"] == "rejected"
    assert len(rows["Dầu Tiếng.xlsx"]["sha256"]) == 64


# ---------------------------------------------------------------- idempotency and locking

def test_second_run_with_nothing_changed_writes_nothing(filled_inbox, outbox):
    args = ["run", "--inbox", str(filled_inbox), "--outbox", str(outbox), "--registry", str(REGISTRY)]
    assert cli(*args).exit_code == 0
    result = cli(*args)
    assert result.exit_code == 0
    assert "không có gì thay đổi" in result.output
    assert len(run_folders(outbox)) == 1
    assert cli(*args, "--force").exit_code == 0
    assert len(run_folders(outbox)) == 2


def test_a_changed_registry_is_a_change(filled_inbox, outbox, tmp_path):
    import shutil

    registry = tmp_path / "don_vi.xlsx"
    shutil.copy(REGISTRY, registry)
    config = Config(paths=PathsConfig(inbox=filled_inbox, outbox=outbox, registry=registry))
    assert nightly_run(config).state == "completed"
    assert nightly_run(config).state == "unchanged"
    os.utime(registry)
    registry.write_bytes(registry.read_bytes())
    with open(registry, "ab") as handle:  # same workbook, different bytes
        handle.write(b"")
    from openpyxl import load_workbook as load

    book = load(registry)
    book["Chỉ tiêu"]["C2"] = 99
    book.save(registry)
    assert nightly_run(config).state == "completed"


def test_files_still_being_copied_wait_for_the_next_run(filled_inbox, outbox, registry):
    fresh = unit_file(filled_inbox, registry, "TA", "BCH THÀNH ĐOÀN THUẬN AN", "Thuận An.xlsx", mtime=time.time())
    config = config_for(filled_inbox, outbox, settle_seconds=120)
    result = nightly_run(config)
    assert result.settling == ["Thuận An.xlsx"]
    names = {r["file"] for r in read_csv(result.folder / "submissions.csv")}
    assert "Thuận An.xlsx" not in names
    set_mtime(fresh, time.time() - 600)
    result = nightly_run(config)
    assert result.state == "completed" and result.settling == []
    assert "Thuận An.xlsx" in {r["file"] for r in read_csv(result.folder / "submissions.csv")}


def test_a_held_lock_makes_the_next_run_exit_75(filled_inbox, outbox):
    from filelock import FileLock

    outbox.mkdir()
    with FileLock(str(outbox / "tonghop.lock")):
        with pytest.raises(RunLocked):
            nightly_run(config_for(filled_inbox, outbox))
        done = subprocess.run([sys.executable, "-m", "pipeline", "run", "--inbox", str(filled_inbox), "--outbox",
                               str(outbox), "--registry", str(REGISTRY)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 75
    assert "Đang có một lần tổng hợp khác" in done.stderr
    assert run_folders(outbox) == []


def test_two_runs_at_once_one_runs_the_other_exits_75(tmp_path, registry):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    source = unit_file(inbox, registry, "DT", "BCH HUYỆN ĐOÀN DẦU TIẾNG", "0.xlsx")
    data = source.read_bytes()
    for i in range(1, 400):  # enough files that the first run still holds the lock when the second starts
        (inbox / f"{i}.xlsx").write_bytes(data)
    outbox = tmp_path / "outbox"
    command = [sys.executable, "-m", "pipeline", "run", "--inbox", str(inbox), "--outbox", str(outbox),
               "--registry", str(REGISTRY)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    codes = sorted([first.wait(timeout=120), second.wait(timeout=120)])
    assert codes == [0, 75]
    assert len(run_folders(outbox)) == 1


# ---------------------------------------------------------------- changes and deadline

def test_changed_value_shows_old_to_new_in_the_workbook_and_the_mail(filled_inbox, outbox, registry):
    config = config_for(filled_inbox, outbox)
    first = nightly_run(config)
    old = first.consolidation.submissions["DT"].values[(2023, "admitted_students")]
    unit_file(filled_inbox, registry, "DT", "BCH HUYỆN ĐOÀN DẦU TIẾNG", "Dầu Tiếng (2).xlsx",
              {(2023, "admitted_students"): old + 7}, mtime=RECEIVED + 3600)
    unit_file(filled_inbox, registry, "PG", "BCH HUYỆN ĐOÀN PHÚ GIÁO", "Phú Giáo (2).xlsx", mtime=RECEIVED + 3600)
    second = nightly_run(config)
    texts = [c.text for c in second.changes]
    expected = f"Huyện đoàn Dầu Tiếng, năm 2023, Số sinh viên được kết nạp đảng: {old} → {old + 7}."
    assert expected in texts
    assert any(c.kind == "accepted" and c.unit == "PG" for c in second.changes)
    assert any(c.kind == "resolved" and c.unit == "PG" for c in second.changes)
    assert any(c.kind == "submission" and "Dầu Tiếng (2).xlsx" in c.text for c in second.changes)
    sheet = load_workbook(second.folder / "tong_hop.xlsx")["Thay đổi"]
    rows = [[cell.value for cell in row] for row in sheet.iter_rows(min_row=4)]
    value_row = next(r for r in rows if r[3] == expected)
    assert (value_row[2], value_row[4], value_row[5], value_row[6]) == ("DT", 2023, str(old), str(old + 7))
    eml = email.message_from_bytes((second.folder / "thu_bao_cao.eml").read_bytes(), policy=email.policy.default)
    body = eml.get_body(preferencelist=("plain",)).get_content()
    assert expected in body


def test_late_submission_is_flagged_and_counted(filled_inbox, outbox, registry):
    unit_file(filled_inbox, registry, "TA", "BCH THÀNH ĐOÀN THUẬN AN", "Thuận An.xlsx",
              mtime=datetime(2024, 2, 11, 8, 0).timestamp())
    result = nightly_run(config_for(filled_inbox, outbox, deadline=date(2024, 2, 10)))
    late = [i for i in result.consolidation.submissions["TA"].issues if i.code == "late_submission"]
    assert len(late) == 1 and late[0].severity == "warning" and "nộp muộn" in late[0].message.lower()
    assert "11/02/2024" in late[0].message and "10/02/2024" in late[0].message
    assert not any(i.code == "late_submission" for i in result.consolidation.submissions["DT"].issues)
    status = load_workbook(result.folder / "tong_hop.xlsx")["Tình trạng nộp"]
    assert "1 đơn vị nộp muộn" in status["A2"].value
    rows = {row[1].value: row for row in status.iter_rows(min_row=5) if row[1].value}
    assert rows["TA"][9].value == "Nộp muộn"
    assert rows["QS"][3].value == "Chưa nộp – quá hạn"  # the run is long after the deadline


# ---------------------------------------------------------------- status and schedule

def test_status_reports_runs_pending_and_mail(filled_inbox, outbox, registry):
    args = ["--inbox", str(filled_inbox), "--outbox", str(outbox)]
    assert "Chưa có lần tổng hợp nào" in cli("status", *args).output
    assert cli("run", *args, "--registry", str(REGISTRY)).exit_code == 0
    output = cli("status", *args).output
    assert "completed" in output and "không thay đổi" in output
    assert "đã ghi tệp .eml" in output
    unit_file(filled_inbox, registry, "TA", "BCH THÀNH ĐOÀN THUẬN AN", "Thuận An.xlsx")
    assert "có thay đổi" in cli("status", *args).output


@pytest.mark.parametrize(("flag", "needles"), [
    ("--cron", ["0 2 * * *", " run"]),
    ("--systemd", ["[Timer]", "OnCalendar=*-*-* 02:00:00", "ExecStart=", "SuccessExitStatus=75"]),
    ("--windows", ["schtasks /Create", "/XML", "tonghop_task.xml"]),
])
def test_schedule_prints_a_ready_schedule(flag, needles, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("schedule", flag)
    assert result.exit_code == 0
    for needle in needles:
        assert needle in result.output


def test_log_file_is_written(filled_inbox, outbox):
    assert cli("run", "--inbox", str(filled_inbox), "--outbox", str(outbox), "--registry", str(REGISTRY)).exit_code == 0
    assert (outbox / "tonghop.log").exists()


def test_a_version_1_ledger_is_migrated_and_its_snapshots_still_read(tmp_path):
    path = tmp_path / "old.sqlite"
    raw = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            raw.execute(statement)
    raw.execute("PRAGMA user_version = 1")
    raw.execute("INSERT INTO runs (id, started_at, state) VALUES (1, '2024-02-10T02:00:00+07:00', 'completed')")
    raw.execute("INSERT INTO run_values VALUES (1, 'DT', 2022, 'members_total', 1250)")
    raw.execute("INSERT INTO run_units VALUES (1, 'DT', 'accepted', 'a.xlsx', 'abc')")
    raw.close()
    with Ledger(path) as ledger:
        assert ledger.version == len(MIGRATIONS) == 3
        old = ledger.snapshot(1)
        assert old.values == {("DT", 2022, "members_total"): 1250}
        assert old.units == {"DT": ("accepted", "a.xlsx", "abc")}
        run = ledger.start_run("fp")
        ledger.save_snapshot(run, old)
        assert ledger.snapshot(run) == old


def test_fingerprint_from_the_scan_equals_one_from_a_fresh_stat(filled_inbox, tmp_path):
    import dataclasses

    from pipeline.core.form import DEFAULT_FORM
    from pipeline.stages.intake import scan
    from pipeline.nightly.fingerprint import fingerprint

    config = Config(paths=PathsConfig(inbox=filled_inbox, outbox=tmp_path / "outbox", registry=REGISTRY))
    scanned = scan(filled_inbox)
    assert scanned and all(f.mtime_ns for f in scanned)
    restat = [dataclasses.replace(f, mtime_ns=0) for f in scanned]
    assert fingerprint(scanned, config, DEFAULT_FORM) == fingerprint(restat, config, DEFAULT_FORM)
    set_mtime(scanned[0].path, scanned[0].mtime + 5)
    assert fingerprint(scan(filled_inbox), config, DEFAULT_FORM) != fingerprint(scanned, config, DEFAULT_FORM)

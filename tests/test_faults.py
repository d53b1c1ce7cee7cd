"""Faults and attacks on the nightly run: odd file names, crashes at exact points, a damaged or held
ledger, a full or read-only disk. Every run ends finished or cleanly refused, every mail goes out once."""

from __future__ import annotations

import csv
import email
import email.policy
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import openpyxl
import pytest
from builders import FormSpec, default_values, write_openpyxl
from conftest import REGISTRY, ROOT, read_csv, set_mtime
from test_nightly import RECEIVED, unit_file
from test_notify import Recorder, smtp_server  # noqa: F401, F811  (smtp_server is a fixture)

from pipeline.core.config import Config, MailConfig, PathsConfig, ReportConfig
from pipeline.nightly.ledger import Ledger
from pipeline.nightly.fingerprint import fingerprint
from pipeline.nightly.job import RunFailed, nightly_run

TONGHOP = [sys.executable, "-m", "pipeline"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def tonghop(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*TONGHOP, *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=timeout)


def run_args(inbox: Path, outbox: Path, *extra: str) -> list[str]:
    return ["run", "--inbox", str(inbox), "--outbox", str(outbox), "--registry", str(REGISTRY), *extra]


def run_folders(outbox: Path) -> list[Path]:
    if not outbox.exists():
        return []
    return sorted(p for p in outbox.iterdir() if p.is_dir() and not p.name.startswith("."))


def ledger_runs(outbox: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(outbox / "tonghop.sqlite")
    try:
        return [(state, message) for state, message in db.execute("SELECT state, message FROM runs ORDER BY id")]
    finally:
        db.close()


def assert_clean_refusal(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.fixture
def two_units(inbox, registry):
    unit_file(inbox, registry, "DT", "BCH HUYỆN ĐOÀN DẦU TIẾNG", "Dầu Tiếng.xlsx")
    unit_file(inbox, registry, "PG", "BCH HUYỆN ĐOÀN PHÚ GIÁO", "Phú Giáo.xlsx")
    return inbox


# ---------------------------------------------------------------- names and texts from outside

def test_a_file_name_that_is_not_utf8_gets_its_verdict_and_the_run_goes_on(two_units, outbox, registry):
    raw_name = b"B\xe1o c\xe1o Th\xe0nh \xb0o\xe0n T\xe2n Uy\xean.xlsx"  # cp1258 bytes, as old zip tools write
    source = unit_file(two_units, registry, "TU", "BCH THÀNH ĐOÀN TÂN UYÊN", "tu.xlsx")
    os.rename(source, os.path.join(os.fsencode(two_units), raw_name))
    result = tonghop(*run_args(two_units, outbox))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    folder, = run_folders(outbox)
    rows = {row["file"]: row for row in read_csv(folder / "submissions.csv")}
    shown = "B\\xe1o c\\xe1o Th\\xe0nh \\xb0o\\xe0n T\\xe2n Uy\\xean.xlsx"
    assert rows[shown]["unit_code"] == "TU" and rows[shown]["status"] == "accepted"
    assert rows["Dầu Tiếng.xlsx"]["status"] == rows["Phú Giáo.xlsx"]["status"] == "accepted"
    assert ledger_runs(outbox) == [("completed", "")]
    with Ledger(outbox / "tonghop.sqlite") as ledger:
        assert shown in {r["name"] for r in ledger.db.execute("SELECT name FROM files")}
    book = openpyxl.load_workbook(folder / "tong_hop.xlsx", read_only=True)
    texts = {c for row in book["Tình trạng nộp"].iter_rows(values_only=True) for c in row if isinstance(c, str)}
    assert shown in texts
    # and the next night, unchanged, is recognised as unchanged
    again = tonghop(*run_args(two_units, outbox))
    assert again.returncode == 0 and "không có gì thay đổi" in again.stdout


CONTROL = "\r\n\t\x0b\x0c\x00\x1b\x7f\x85\u2028\u2029"


def test_control_characters_never_break_a_record_nor_start_a_formula(inbox, outbox, registry):
    quotas = {y: registry.quotas[("DT", y)] for y in (2021, 2022, 2023)}
    good = FormSpec(unit_line="BCH HUYỆN ĐOÀN DẦU TIẾNG", values=default_values("DT", quotas=quotas),
                    sheet_name="Biểu\rmẫu")
    set_mtime(write_openpyxl(good, inbox / "Dầu Tiếng\r=1+1\r+SUM(A1)\n@x.xlsx"), RECEIVED)
    bad = FormSpec(unit_line="BCH =HYPERLINK(\"http://x\")\r-2+3\n@SUM(1)\u2028=1", values=default_values(0),
                   sheet_name="=cmd\r|x")
    set_mtime(write_openpyxl(bad, inbox / "\r-lạ.xlsx"), RECEIVED)
    result = tonghop(*run_args(inbox, outbox))
    assert result.returncode == 0, result.stderr
    folder, = run_folders(outbox)
    form_years, metrics = 3, 7
    for name, expected_records in [("values.csv", 1 + form_years * metrics), ("submissions.csv", None),
                                   ("issues.csv", None)]:
        data = (folder / name).read_bytes().decode("utf-8")
        lines = data.split("\n")
        assert lines[-1] == ""
        records = list(csv.reader(lines[:-1]))  # one record per physical line: nothing inside a field breaks it
        header = records[0]
        assert all(len(r) == len(header) for r in records), name
        if expected_records is not None:
            assert len(records) == expected_records, name
        for record in records:
            for field in record:
                assert not any(ch in field for ch in CONTROL), (name, field)
                assert not field.startswith(("=", "+", "-", "@")), (name, field)
    values = read_csv(folder / "values.csv")
    assert {v["file"] for v in values} == {"Dầu Tiếng\\r=1+1\\r+SUM(A1)\\n@x.xlsx"}
    assert {v["sheet"] for v in values} == {"Biểu\\rmẫu"}
    issues = read_csv(folder / "issues.csv")
    unknown = next(i for i in issues if i["code"] == "unit_unknown")
    assert unknown["file"] == "\\r-lạ.xlsx"
    assert 'dòng đơn vị: "BCH =HYPERLINK("http://x")"' in unknown["message"]
    # the workbook and the feedback copies hold no formula from outside, and no control character
    for path in [folder / "tong_hop.xlsx", *sorted((folder / "phan_hoi").glob("*.xlsx"))]:
        book = openpyxl.load_workbook(path)
        for sheet in book.worksheets:
            assert not any(ch in sheet.title for ch in CONTROL)
            for row in sheet.iter_rows():
                for cell in row:
                    if isinstance(cell.value, str) and ("lạ" in cell.value or "Dầu Tiếng\\r" in cell.value
                                                        or "HYPERLINK" in cell.value):
                        assert cell.data_type == "s", (path.name, cell.coordinate, cell.value)
                        assert not any(ch in cell.value for ch in "\r\x00\x1b\u2028"), (path.name, cell.value)
    eml = folder / "thu_bao_cao.eml"
    if eml.exists():
        assert b"\r\r" not in eml.read_bytes()


# ---------------------------------------------------------------- mail exactly once across crashes

CRASHING_RUN = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from pipeline.core.config import Config, MailConfig, PathsConfig, ReportConfig
    from pipeline.nightly import ledger as ledger_module
    from pipeline.nightly import job as nightly
    point = {point!r}
    Ledger = ledger_module.Ledger

    def die(*args, **kwargs):
        os._exit(9)  # as a kill -9 at this exact point would

    if point == "before_complete":
        # the run folder is in place and its mail built, the run not yet recorded as completed
        if hasattr(Ledger, "complete_run"):
            Ledger.complete_run = die
        original_finish = Ledger.finish_run
        def finish(self, run_id, state, **kw):
            if state == "completed":
                die()
            return original_finish(self, run_id, state, **kw)
        Ledger.finish_run = finish
    elif point == "locked_at_complete":
        import sqlite3
        def locked(*args, **kwargs):
            raise sqlite3.OperationalError("database is locked")
        if hasattr(Ledger, "complete_run"):
            Ledger.complete_run = locked
        original_finish = Ledger.finish_run
        def finish(self, run_id, state, **kw):
            if state == "completed":
                locked()
            return original_finish(self, run_id, state, **kw)
        Ledger.finish_run = finish
    elif point == "before_server":
        nightly.send_message = die  # marked sending, no server contacted yet
    elif point == "after_server_took_it":
        original_state = Ledger.set_mail_state
        def set_state(self, message_id, state, *args, **kw):
            if state == "sent":
                die()  # the server has the message; the ledger never hears it
            return original_state(self, message_id, state, *args, **kw)
        Ledger.set_mail_state = set_state
    # Guarded: where readers are spawned (Windows), each one imports this script as a module.
    if __name__ == "__main__":
        sys.stdout.reconfigure(encoding="utf-8")
        config = Config(paths=PathsConfig(inbox=Path({inbox!r}), outbox=Path({outbox!r}),
                                          registry=Path({registry!r})),
                        report=ReportConfig(), mail=MailConfig(host="127.0.0.1", port={port}, security="none",
                        sender="tinhdoan@example.vn", to=("bantochuc@example.vn",), retries=1, timeout_seconds=5))
        try:
            nightly.nightly_run(config)
        except nightly.RunFailed as exc:
            print("RunFailed:", exc)
            sys.exit(2)
""")


def crash_run(tmp_path: Path, inbox: Path, outbox: Path, port: int, point: str) -> subprocess.CompletedProcess:
    script = tmp_path / f"crash_{point}.py"
    script.write_text(CRASHING_RUN.format(root=str(ROOT), point=point, inbox=str(inbox), outbox=str(outbox),
                                          registry=str(REGISTRY), port=port), encoding="utf-8")
    # The script's own output is only for the assertion messages: whatever the console's code page.
    return subprocess.run([sys.executable, str(script)], capture_output=True, encoding="utf-8", errors="replace",
                          timeout=120)


def mail_config(inbox: Path, outbox: Path, port: int) -> Config:
    return Config(paths=PathsConfig(inbox=inbox, outbox=outbox, registry=REGISTRY), report=ReportConfig(),
                  mail=MailConfig(host="127.0.0.1", port=port, security="none", sender="tinhdoan@example.vn",
                                  to=("bantochuc@example.vn",), retries=1, timeout_seconds=5))


@pytest.mark.parametrize("point,code", [("before_complete", 9), ("locked_at_complete", 2)])
def test_a_run_that_dies_before_it_is_recorded_never_leaves_a_mail_to_send(tmp_path, two_units, outbox,
                                                                            smtp_server, point, code):
    handler = Recorder()
    port = smtp_server(handler)
    dead = crash_run(tmp_path, two_units, outbox, port, point)
    assert dead.returncode == code, dead.stdout + dead.stderr
    assert handler.envelopes == []
    result = nightly_run(mail_config(two_units, outbox, port))
    assert result.state == "completed"
    assert [(m.kind, m.state) for m in result.mails] == [("report", "sent")]
    assert len(handler.envelopes) == 1  # the dead run's mail is not sent besides this run's own
    with Ledger(outbox / "tonghop.sqlite") as ledger:
        assert [r.state for r in reversed(ledger.recent_runs())] == ["interrupted" if code == 9 else "failed",
                                                                      "completed"]
        assert [m.state for m in ledger.mails()] == ["sent"]
    assert nightly_run(mail_config(two_units, outbox, port)).mails == []
    assert len(handler.envelopes) == 1


def test_a_mail_whose_sending_stopped_before_any_server_is_sent_by_the_next_run(tmp_path, two_units, outbox,
                                                                                smtp_server):
    handler = Recorder()
    port = smtp_server(handler)
    dead = crash_run(tmp_path, two_units, outbox, port, "before_server")
    assert dead.returncode == 9
    assert handler.envelopes == []
    with Ledger(outbox / "tonghop.sqlite") as ledger:
        assert [m.state for m in ledger.mails()] == ["sending"]
    status = tonghop("status", "--outbox", str(outbox), "--inbox", str(two_units))
    assert "chưa rõ" not in status.stdout  # no server ever saw it: its outcome is not "unknown"
    again = nightly_run(mail_config(two_units, outbox, port))
    assert again.state == "unchanged"
    assert [(m.kind, m.state) for m in again.mails] == [("report", "sent")]
    assert len(handler.envelopes) == 1
    assert nightly_run(mail_config(two_units, outbox, port)).mails == []
    assert len(handler.envelopes) == 1


def test_a_mail_a_server_may_hold_is_unknown_and_never_sent_again(tmp_path, two_units, outbox, smtp_server):
    handler = Recorder()
    port = smtp_server(handler)
    dead = crash_run(tmp_path, two_units, outbox, port, "after_server_took_it")
    assert dead.returncode == 9
    assert len(handler.envelopes) == 1
    with Ledger(outbox / "tonghop.sqlite") as ledger:
        assert [m.state for m in ledger.mails()] == ["unknown"]
    assert nightly_run(mail_config(two_units, outbox, port)).mails == []
    assert len(handler.envelopes) == 1
    status = tonghop("status", "--outbox", str(outbox), "--inbox", str(two_units))
    assert "chưa rõ kết quả" in status.stdout


# ---------------------------------------------------------------- changes

def test_a_vanished_submission_is_a_change_and_is_mailed(two_units, outbox, smtp_server):
    handler = Recorder()
    port = smtp_server(handler)
    config = mail_config(two_units, outbox, port)
    first = nightly_run(config)
    assert first.consolidation.unit_status("PG") == "accepted"
    (two_units / "Phú Giáo.xlsx").unlink()
    second = nightly_run(config)
    assert second.state == "completed"
    kinds = {(c.kind, c.unit) for c in second.changes}
    assert ("withdrawn", "PG") in kinds
    assert any("Phú Giáo" in c.text and "không còn trong hộp thư" in c.text for c in second.changes)
    assert [(m.kind, m.state) for m in second.mails] == [("report", "sent")]
    assert len(handler.envelopes) == 2
    mail = email.message_from_bytes(handler.envelopes[1][2], policy=email.policy.default)
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Phú Giáo" in body and "không còn trong hộp thư" in body
    book = openpyxl.load_workbook(second.folder / "tong_hop.xlsx", read_only=True)
    texts = [c for row in book["Thay đổi"].iter_rows(values_only=True) for c in row if isinstance(c, str)]
    assert any("Phú Giáo" in t and "không còn trong hộp thư" in t for t in texts)


def test_an_unreadable_folder_is_named_not_silently_skipped(two_units, registry):
    from pipeline.stages.intake import scan

    sub = two_units / "thang2"
    sub.mkdir()
    unit_file(sub, registry, "TU", "BCH THÀNH ĐOÀN TÂN UYÊN", "tu.xlsx")
    real_scandir = os.scandir

    def scandir(path):
        if str(path).endswith("thang2"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    os.scandir, saved = scandir, os.scandir
    try:
        entries = scan(two_units)
    finally:
        os.scandir = saved
    folder = next(e for e in entries if e.name == "thang2/")
    assert "không đọc được" in folder.junk_reason and "Permission denied" in folder.junk_reason


# ---------------------------------------------------------------- layouts and configuration

def test_an_outbox_inside_the_inbox_is_refused(two_units):
    result = tonghop(*run_args(two_units, two_units / "ketqua"))
    assert_clean_refusal(result, "nằm trong hộp thư")
    assert not (two_units / "ketqua").exists() or run_folders(two_units / "ketqua") == []
    same = tonghop(*run_args(two_units, two_units))
    assert_clean_refusal(same, "nằm trong hộp thư")


def test_the_fingerprint_follows_the_program_and_the_form(two_units, tmp_path, monkeypatch):
    import pipeline.nightly.fingerprint as nightly
    from pipeline.core.form import DEFAULT_FORM
    from pipeline.stages.intake import scan

    config = Config(paths=PathsConfig(inbox=two_units, outbox=tmp_path / "o", registry=REGISTRY))
    files = scan(two_units)
    base = fingerprint(files, config, DEFAULT_FORM)
    monkeypatch.setattr(nightly, "_PROGRAM_DIGEST", b"another version")
    assert fingerprint(files, config, DEFAULT_FORM) != base
    monkeypatch.undo()
    edited = tmp_path / "form.toml"
    edited.write_text(DEFAULT_FORM.read_text(encoding="utf-8") + "\n# a rule changed\n", encoding="utf-8")
    assert fingerprint(files, config, edited) != base
    assert fingerprint(files, config, DEFAULT_FORM) == base


# ---------------------------------------------------------------- the ledger

def _damage_random(path: Path) -> None:
    path.write_bytes(os.urandom(8192))


def _damage_truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _damage_empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize("damage", [_damage_random, _damage_truncate, _damage_empty])
def test_a_damaged_ledger_is_kept_aside_and_a_new_one_started_loudly(two_units, outbox, damage):
    first = tonghop(*run_args(two_units, outbox))
    assert first.returncode == 0, first.stderr
    ledger = outbox / "tonghop.sqlite"
    db = sqlite3.connect(ledger, isolation_level=None)
    if damage is _damage_truncate:
        # pad the ledger with pages, so that half of it leaves tables pointing past the end
        db.execute("PRAGMA foreign_keys=OFF")
        db.execute("INSERT INTO run_snapshots (run_id, data) VALUES (999, ?)", (os.urandom(200_000),))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # fold the WAL in, so the file itself holds everything
    db.close()
    for extra in ("-wal", "-shm"):
        Path(str(ledger) + extra).unlink(missing_ok=True)
    damage(ledger)
    damaged_bytes = ledger.read_bytes()
    second = tonghop(*run_args(two_units, outbox, "--force"))
    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stderr
    assert "CẢNH BÁO" in second.stderr and "sổ ghi" in second.stderr.lower()
    kept = [p for p in outbox.iterdir() if p.name.startswith("tonghop.sqlite.hong-") and not p.name.endswith(("-wal", "-shm"))]
    assert len(kept) == 1 and kept[0].read_bytes() == damaged_bytes  # kept as it was, never deleted
    assert ledger_runs(outbox) == [("completed", "")]
    assert len(run_folders(outbox)) == 2
    assert "sổ ghi" in (outbox / "tonghop.log").read_text(encoding="utf-8").lower()


def test_a_ledger_of_a_newer_program_or_a_folder_is_refused(two_units, outbox):
    assert tonghop(*run_args(two_units, outbox)).returncode == 0
    with sqlite3.connect(outbox / "tonghop.sqlite") as db:
        db.execute("PRAGMA user_version = 99")
    newer = tonghop(*run_args(two_units, outbox, "--force"))
    assert_clean_refusal(newer, "phiên bản tonghop mới hơn")
    assert len(run_folders(outbox)) == 1
    folder_ledger = outbox.parent / "ledger-as-folder"
    folder_ledger.mkdir()
    config = outbox.parent / "tonghop.toml"
    config.write_text(f"[paths]\nledger = '{folder_ledger}'\n", encoding="utf-8")
    as_folder = tonghop(*run_args(two_units, outbox, "--force", "--config", str(config)))
    assert_clean_refusal(as_folder, "là một thư mục")
    status = tonghop("status", "--outbox", str(outbox), "--inbox", str(two_units))
    assert_clean_refusal(status, "phiên bản tonghop mới hơn")


def test_a_ledger_held_by_another_program_is_one_sentence(two_units, outbox):
    assert tonghop(*run_args(two_units, outbox)).returncode == 0
    holder = sqlite3.connect(outbox / "tonghop.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        held = tonghop(*run_args(two_units, outbox, "--force"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_clean_refusal(held, "đang bị một chương trình khác giữ")
    assert "OperationalError" in (outbox / "tonghop.log").read_text(encoding="utf-8") or \
        "locked" in (outbox / "tonghop.log").read_text(encoding="utf-8")


def test_dead_runs_are_marked_interrupted(two_units, outbox):
    assert tonghop(*run_args(two_units, outbox)).returncode == 0
    with sqlite3.connect(outbox / "tonghop.sqlite") as db:
        db.execute("INSERT INTO runs (started_at, state) VALUES ('2024-02-09T02:00:00+07:00', 'running')")
    assert tonghop(*run_args(two_units, outbox)).returncode == 0  # unchanged, but it looked
    states = [state for state, _ in ledger_runs(outbox)]
    assert states == ["completed", "interrupted"]


def test_an_unwritable_lock_file_is_one_sentence(two_units, outbox):
    outbox.mkdir()
    (outbox / "tonghop.lock").mkdir()  # nothing can open it as a file, root included
    result = tonghop(*run_args(two_units, outbox))
    assert_clean_refusal(result, "tonghop.lock")
    assert [p.name for p in run_folders(outbox)] == ["tonghop.lock"]


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a small file system here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_is_one_sentence_and_reaches_the_log_and_ledger(two_units, small_disk, tmp_path):
    outbox = small_disk / "outbox"
    log = tmp_path / "tonghop.log"
    ledger = tmp_path / "tonghop.sqlite"
    config = tmp_path / "tonghop.toml"
    config.write_text(f"[paths]\nlog = '{log}'\nledger = '{ledger}'\n", encoding="utf-8")
    (small_disk / "filler").write_bytes(b"\0" * 100_000)
    result = tonghop(*run_args(two_units, outbox, "--config", str(config)))
    assert_clean_refusal(result, "Ổ đĩa đã đầy")
    assert "Traceback" in log.read_text(encoding="utf-8")  # the details are in the log
    db = sqlite3.connect(ledger)
    assert [r[0] for r in db.execute("SELECT state FROM runs")] == ["failed"]
    db.close()
    assert run_folders(outbox) == []
    assert not any(p.name.startswith(".") for p in outbox.iterdir() if p.is_dir())  # no half-written folder


def test_a_read_only_outbox_is_one_sentence(two_units, small_disk, tmp_path):
    outbox = small_disk / "outbox"
    outbox.mkdir()
    done = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot remount read-only here")
    config = tmp_path / "tonghop.toml"
    config.write_text(f"[paths]\nlog = '{tmp_path / 'tonghop.log'}'\n", encoding="utf-8")
    result = tonghop(*run_args(two_units, outbox, "--config", str(config)))
    assert_clean_refusal(result)
    assert "ghi" in result.stderr and str(outbox) in result.stderr


def test_failures_inside_the_library_are_run_failed(two_units, tmp_path):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (outbox / "tonghop.lock").mkdir()
    config = Config(paths=PathsConfig(inbox=two_units, outbox=outbox, registry=REGISTRY))
    with pytest.raises(RunFailed, match="tonghop.lock"):
        nightly_run(config)

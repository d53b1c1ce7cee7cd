"""`tonghop schedule`: the texts an administrator installs, checked as the scheduler would read them."""

from __future__ import annotations

import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.nightly.schedule import TASK_CMD, TASK_LOG, TASK_XML

NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}


def schedule(tmp_path: Path, monkeypatch, *args: str):
    monkeypatch.chdir(tmp_path)
    return CliRunner().invoke(main, ["schedule", *args])


def task(tmp_path: Path) -> ET.Element:
    raw = (tmp_path / TASK_XML).read_bytes()
    assert raw[:2] == b"\xff\xfe"  # UTF-16 with its byte-order mark, as Task Scheduler exports tasks
    return ET.fromstring(raw.decode("utf-16").split("?>", 1)[1])


def text(root: ET.Element, path: str) -> str:
    found = root.find(path, NS)
    assert found is not None, path
    return found.text or ""


def test_windows_task_runs_unattended_catches_up_and_never_twice(tmp_path, monkeypatch):
    (tmp_path / "tonghop.toml").write_text("[paths]\noutbox = 'ket_qua'\n", encoding="utf-8")
    result = schedule(tmp_path, monkeypatch, "--windows", "--at", "02:30")
    assert result.exit_code == 0, result.output
    root = task(tmp_path)
    assert text(root, "t:Principals/t:Principal/t:LogonType") == "S4U"  # whether logged on or not, no password
    assert text(root, "t:Settings/t:StartWhenAvailable") == "true"  # after a missed start
    assert text(root, "t:Settings/t:MultipleInstancesPolicy") == "IgnoreNew"
    assert text(root, "t:Settings/t:DisallowStartIfOnBatteries") == "false"
    assert text(root, "t:Triggers/t:CalendarTrigger/t:StartBoundary").endswith("T02:30:00")
    assert text(root, "t:Triggers/t:CalendarTrigger/t:ScheduleByDay/t:DaysInterval") == "1"
    assert text(root, "t:Actions/t:Exec/t:WorkingDirectory").replace("\\", "/").endswith(tmp_path.name)
    assert text(root, "t:Actions/t:Exec/t:Command").endswith(TASK_CMD)
    wrapper = (tmp_path / TASK_CMD).read_bytes().decode("utf-8")
    assert "chcp 65001" in wrapper and "\r\n" in wrapper
    assert f'ket_qua\\{TASK_LOG}" 2>&1' in wrapper and ">>" in wrapper  # output kept in the log
    assert "--config" in wrapper and "tonghop.toml" in wrapper
    command = next(line for line in result.output.splitlines() if "schtasks" in line).strip()
    assert command.startswith("schtasks /Create /TN tonghop /XML ") and command.endswith(" /F")
    assert len(command) < 261


def test_windows_interval_form(tmp_path, monkeypatch):
    assert schedule(tmp_path, monkeypatch, "--windows", "--every", "10").exit_code == 0
    root = task(tmp_path)
    assert text(root, "t:Triggers/t:CalendarTrigger/t:Repetition/t:Interval") == "PT10M"


def test_install_is_for_windows_only(tmp_path, monkeypatch):
    result = schedule(tmp_path, monkeypatch, "--windows", "--install")
    if result.exit_code == 0:
        pytest.skip("this machine is Windows")
    assert result.exit_code == 2 and "Windows" in result.output
    assert schedule(tmp_path, monkeypatch, "--cron", "--install").exit_code == 2


def test_cron_keeps_the_output_in_a_log(tmp_path, monkeypatch):
    result = schedule(tmp_path, monkeypatch, "--cron", "--at", "01:15")
    assert result.exit_code == 0
    line = next(line for line in result.output.splitlines() if not line.startswith("#"))
    fields = line.split(" ", 5)
    assert fields[:5] == ["15", "1", "*", "*", "*"]
    words = shlex.split(fields[5])
    assert "/dev/null" not in line
    assert words[-2:] == [str(tmp_path.resolve() / "outbox" / TASK_LOG), "2>&1"] and words[-3] == ">>"
    every = schedule(tmp_path, monkeypatch, "--cron", "--every", "15").output
    assert "*/15 * * * *" in every


def test_systemd_catches_up_and_logs(tmp_path, monkeypatch):
    result = schedule(tmp_path, monkeypatch, "--systemd")
    assert result.exit_code == 0
    assert "Persistent=true" in result.output
    assert f"StandardOutput=append:{tmp_path.resolve() / 'outbox' / TASK_LOG}" in result.output
    assert "OnCalendar=*-*-* 02:00:00" in result.output

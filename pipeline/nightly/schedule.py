"""Ready-made schedules for `tonghop run`: a crontab line, a systemd service and timer, or a Windows
Task Scheduler task (its XML, a small .cmd wrapper, and the one schtasks command that registers it).

Nothing here runs anything: the texts are returned, and the CLI writes or prints them.
"""

from __future__ import annotations

import getpass
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from xml.sax.saxutils import escape

TASK_NAME = "tonghop"
TASK_XML = "tonghop_task.xml"
TASK_CMD = "tonghop_chay.cmd"
TASK_LOG = "tonghop-lich.log"  # what the scheduled command prints, beside the rotating tonghop.log


@dataclass(frozen=True)
class Schedule:
    """When and what to run. `every_minutes` > 0 repeats the run all day at that interval."""

    hour: int
    minute: int
    workdir: Path
    command: tuple[str, ...]  # the program and its arguments, e.g. (".../tonghop", "run", "--config", "…")
    log_file: Path  # where the scheduler appends what the command prints
    every_minutes: int = 0


def run_command(executable: Path | None, config_file: Path | None) -> tuple[str, ...]:
    """The `tonghop run` command line of this installation."""
    command = [sys.executable, "-m", "pipeline", "run"] if executable is None else [str(executable), "run"]
    if config_file is not None:
        command += ["--config", str(config_file)]
    return tuple(command)


def _when(schedule: Schedule) -> str:
    if schedule.every_minutes:
        return f"mỗi {schedule.every_minutes} phút"
    return f"lúc {schedule.hour:02d}:{schedule.minute:02d} hằng đêm"


def cron_text(schedule: Schedule) -> str:
    line = (f"cd {shlex.quote(str(schedule.workdir))} && mkdir -p {shlex.quote(str(schedule.log_file.parent))} && "
            f"{shlex.join(schedule.command)} >> {shlex.quote(str(schedule.log_file))} 2>&1")
    timing = (f"*/{schedule.every_minutes} * * * *" if schedule.every_minutes
              else f"{schedule.minute} {schedule.hour} * * *")
    return (f"# Tổng hợp báo cáo phát triển đảng {_when(schedule)}; những gì lệnh in ra được ghi vào "
            f"{schedule.log_file} (nhật ký chi tiết: tonghop.log trong thư mục kết quả)\n"
            f"{timing} {line}\n")


def systemd_text(schedule: Schedule) -> str:
    exec_line = " ".join(shlex.quote(part) for part in schedule.command)
    timing = (f"OnCalendar=*-*-* *:0/{schedule.every_minutes}:00" if schedule.every_minutes
              else f"OnCalendar=*-*-* {schedule.hour:02d}:{schedule.minute:02d}:00")
    return (
        "# /etc/systemd/system/tonghop.service\n"
        "[Unit]\n"
        "Description=Tổng hợp báo cáo phát triển đảng (tonghop)\n"
        "After=network-online.target\n"
        "Wants=network-online.target\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"WorkingDirectory={schedule.workdir}\n"
        f"ExecStartPre=/bin/mkdir -p {shlex.quote(str(schedule.log_file.parent))}\n"
        f"ExecStart={exec_line}\n"
        "# exit code 75: another run was still going; not a failure\n"
        "SuccessExitStatus=75\n"
        f"StandardOutput=append:{schedule.log_file}\n"
        f"StandardError=append:{schedule.log_file}\n"
        "EnvironmentFile=-/etc/tonghop.env\n\n"
        "# /etc/systemd/system/tonghop.timer\n"
        "[Unit]\n"
        "Description=Chạy tonghop theo lịch\n\n"
        "[Timer]\n"
        f"{timing}\n"
        "# a run missed while the machine was off starts as soon as it is on again\n"
        "Persistent=true\n\n"
        "[Install]\n"
        "WantedBy=timers.target\n\n"
        "# Cài đặt: systemctl daemon-reload && systemctl enable --now tonghop.timer\n"
    )


def _windows(path: Path | str) -> str:
    return str(PureWindowsPath(path))


def windows_cmd_text(schedule: Schedule) -> str:
    """The wrapper the task runs: UTF-8 console, the working folder, output appended to the log."""
    program, *arguments = schedule.command
    quoted = " ".join(f'"{part}"' for part in (_windows(program) if i == 0 else part
                                               for i, part in enumerate([program, *arguments])))
    return (
        "@echo off\r\n"
        "rem Chạy tonghop theo lịch của Task Scheduler (tạo bởi: tonghop schedule --windows)\r\n"
        "chcp 65001 >nul\r\n"
        "set PYTHONIOENCODING=utf-8\r\n"
        "set PYTHONUTF8=1\r\n"
        f'cd /d "{_windows(schedule.workdir)}"\r\n'
        f'if not exist "{_windows(schedule.log_file.parent)}" mkdir "{_windows(schedule.log_file.parent)}"\r\n'
        f'{quoted} >> "{_windows(schedule.log_file)}" 2>&1\r\n'
        "exit /b %ERRORLEVEL%\r\n"
    )


def windows_task_xml(schedule: Schedule, wrapper: Path, user: str | None = None) -> str:
    """A Task Scheduler 1.2 task: runs whether the user is logged on or not (S4U: no password is
    stored), starts as soon as possible after a missed time, one instance at a time, in the
    working folder, for at most two hours."""
    user = user or getpass.getuser()
    repetition = (f"      <Repetition>\n        <Interval>PT{schedule.every_minutes}M</Interval>\n"
                  f"        <Duration>P1D</Duration>\n        <StopAtDurationEnd>false</StopAtDurationEnd>\n"
                  f"      </Repetition>\n") if schedule.every_minutes else ""
    start = f"2024-01-01T{schedule.hour:02d}:{schedule.minute:02d}:00"
    return (
        '<?xml version="1.0" encoding="UTF-16"?>\n'
        '<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">\n'
        "  <RegistrationInfo>\n"
        f"    <Description>{escape('Tổng hợp báo cáo phát triển đảng (tonghop) ' + _when(schedule))}</Description>\n"
        f"    <URI>\\{TASK_NAME}</URI>\n"
        "  </RegistrationInfo>\n"
        "  <Triggers>\n"
        "    <CalendarTrigger>\n"
        f"{repetition}"
        f"      <StartBoundary>{start}</StartBoundary>\n"
        "      <Enabled>true</Enabled>\n"
        "      <ScheduleByDay>\n"
        "        <DaysInterval>1</DaysInterval>\n"
        "      </ScheduleByDay>\n"
        "    </CalendarTrigger>\n"
        "  </Triggers>\n"
        "  <Principals>\n"
        '    <Principal id="Author">\n'
        f"      <UserId>{escape(user)}</UserId>\n"
        "      <LogonType>S4U</LogonType>\n"
        "      <RunLevel>LeastPrivilege</RunLevel>\n"
        "    </Principal>\n"
        "  </Principals>\n"
        "  <Settings>\n"
        "    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>\n"
        "    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>\n"
        "    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>\n"
        "    <StartWhenAvailable>true</StartWhenAvailable>\n"
        "    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>\n"
        "    <IdleSettings>\n"
        "      <StopOnIdleEnd>false</StopOnIdleEnd>\n"
        "      <RestartOnIdle>false</RestartOnIdle>\n"
        "    </IdleSettings>\n"
        "    <AllowStartOnDemand>true</AllowStartOnDemand>\n"
        "    <Enabled>true</Enabled>\n"
        "    <Hidden>false</Hidden>\n"
        "    <WakeToRun>false</WakeToRun>\n"
        "    <ExecutionTimeLimit>PT2H</ExecutionTimeLimit>\n"
        "    <Priority>7</Priority>\n"
        "  </Settings>\n"
        '  <Actions Context="Author">\n'
        "    <Exec>\n"
        f"      <Command>{escape(_windows(wrapper))}</Command>\n"
        f"      <WorkingDirectory>{escape(_windows(schedule.workdir))}</WorkingDirectory>\n"
        "    </Exec>\n"
        "  </Actions>\n"
        "</Task>\n"
    )


def schtasks_command(xml_path: Path) -> list[str]:
    """The one command that registers (or replaces) the task from its XML."""
    return ["schtasks", "/Create", "/TN", TASK_NAME, "/XML", _windows(xml_path), "/F"]


def windows_files(schedule: Schedule, folder: Path, user: str | None = None) -> dict[Path, bytes]:
    """The task XML (UTF-16 with a byte-order mark, as Task Scheduler writes its own) and the wrapper."""
    wrapper = folder / TASK_CMD
    return {
        folder / TASK_XML: windows_task_xml(schedule, wrapper, user).encode("utf-16"),
        # cmd.exe reads a batch file in the console's code page; the wrapper's first command switches
        # to UTF-8, and the rest of the file is plain ASCII but for the paths, written as UTF-8.
        wrapper: windows_cmd_text(schedule).encode("utf-8"),
    }

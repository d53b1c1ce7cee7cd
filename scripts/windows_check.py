"""Consolidate the sample inbox and the test corpora twice, as Linux runs it and as Windows would
(tests/windows/sitecustomize.py), and check the two give the same results with no traceback.

Each inbox is run by a real `python -m pipeline run` process both ways, on copies with the same file
times. Compared: the exit status, every CSV export byte for byte, summary.json without its times,
the names of the feedback copies, and every cell of every sheet of tong_hop.xlsx except the cells that
state when the run was made.

    .venv/bin/python scripts/windows_check.py [--keep DIR]

Exit status 0 when every inbox gives identical results, 1 otherwise (the differences are printed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

SIMULATION = {"TONGHOP_SIMULATE_WINDOWS": "1", "PYTHONPATH": str(ROOT / "tests" / "windows"),
              "PYTHONIOENCODING": "cp1252", "PYTHONWARNDEFAULTENCODING": "1"}
# Cells and summary keys that say when a run was made, not what it found.
WHEN = re.compile(r"\b\d{1,2}/\d{1,2}/\d{4}\b|\b\d{4}-\d{2}-\d{2}[ T_]\d{2}[:.]?\d{2}|\b\d{1,2}:\d{2}\b")
SUMMARY_TIMES = {"created", "run", "run_name", "timings", "generated_at", "started", "written"}


def sample_inbox(folder: Path) -> Path:
    from conftest import copy_sample_inbox

    return copy_sample_inbox(folder / "sample")


def hostile_inbox(folder: Path) -> Path:
    from hostile import ACCEPTED_HOSTILE, CORPUS, VALID, bomb_empty_cells, zip_version_too_new

    inbox = folder / "hostile"
    inbox.mkdir()
    for item in (*CORPUS, *VALID, *ACCEPTED_HOSTILE):
        item.make(inbox / item.name)
    zip_version_too_new(inbox / "zip_version_25.xlsx")
    bomb_empty_cells(inbox / "~$bomb.xlsx")
    (inbox / "ghi chu.txt").write_text("Gửi kèm báo cáo.", encoding="utf-8")
    stamp = datetime(2024, 1, 20, 9, 0).timestamp()
    for path in inbox.iterdir():
        os.utime(path, (stamp, stamp))
    return inbox


def consolidate(inbox: Path, outbox: Path, simulated: bool) -> tuple[int, str, Path | None]:
    env = {**os.environ, **(SIMULATION if simulated else {})}
    if not simulated:
        for key in SIMULATION:
            env.pop(key, None)
    copy = outbox.parent / f"{inbox.name}-inbox"
    shutil.copytree(inbox, copy)  # copytree keeps the file times
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", "--inbox", str(copy), "--outbox", str(outbox),
                           "--registry", str(ROOT / "templates" / "don_vi.xlsx")],
                          cwd=ROOT, env=env, capture_output=True, timeout=900, check=False)
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    log = outbox / "tonghop.log"
    if log.exists():
        output += log.read_text(encoding="utf-8", errors="replace")
    runs = [p for p in outbox.iterdir() if p.is_dir() and not p.name.startswith(".")] if outbox.exists() else []
    return done.returncode, output, runs[0] if len(runs) == 1 else None


def summary_without_times(path: Path) -> object:
    def strip(value: object) -> object:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in SUMMARY_TIMES}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(json.loads(path.read_text(encoding="utf-8")))


def workbook_cells(path: Path) -> dict[str, list[tuple]]:
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    cells = {}
    for sheet in book.worksheets:
        rows = []
        for row in sheet.iter_rows(values_only=True):
            rows.append(tuple("<when>" if isinstance(v, str) and WHEN.search(v) else
                              "<when>" if isinstance(v, datetime) else v for v in row))
        cells[sheet.title] = rows
    book.close()
    return cells


def compare(name: str, normal: tuple[int, str, Path | None], windows: tuple[int, str, Path | None]) -> list[str]:
    problems = []
    (code_a, out_a, run_a), (code_b, out_b, run_b) = normal, windows
    for label, output in (("normal", out_a), ("simulated Windows", out_b)):
        if "Traceback" in output:
            problems.append(f"{name}: a traceback in the {label} run:\n{output[-3000:]}")
    if code_a != code_b:
        problems.append(f"{name}: exit status {code_a} normally, {code_b} under Windows")
    if run_a is None or run_b is None:
        problems.append(f"{name}: no single run folder (normal {run_a}, Windows {run_b})")
        return problems
    files_a = sorted(p.relative_to(run_a).as_posix() for p in run_a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(run_b).as_posix() for p in run_b.rglob("*") if p.is_file())
    if files_a != files_b:
        problems.append(f"{name}: different files: {sorted(set(files_a) ^ set(files_b))}")
    for relative in files_a:
        a, b = run_a / relative, run_b / relative
        if not b.exists():
            continue
        if relative.endswith(".csv") and a.read_bytes() != b.read_bytes():
            problems.append(f"{name}: {relative} differs")
        elif relative == "summary.json" and summary_without_times(a) != summary_without_times(b):
            problems.append(f"{name}: summary.json differs")
        elif relative == "tong_hop.xlsx":
            cells_a, cells_b = workbook_cells(a), workbook_cells(b)
            for sheet in sorted(set(cells_a) | set(cells_b)):
                if cells_a.get(sheet) != cells_b.get(sheet):
                    problems.append(f"{name}: sheet {sheet!r} of tong_hop.xlsx differs")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    options = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="tonghop-windows-")) if options.keep is None else options.keep
    work.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    try:
        for inbox in (sample_inbox(work / "inboxes"), hostile_inbox(work / "inboxes")):
            results = []
            for simulated in (False, True):
                outbox = work / ("windows" if simulated else "normal") / inbox.name / "outbox"
                outbox.parent.mkdir(parents=True)
                results.append(consolidate(inbox, outbox, simulated))
            found = compare(inbox.name, results[0], results[1])
            counts = summary_without_times(results[0][2] / "summary.json") if results[0][2] else {}
            print(f"{inbox.name}: {sum(1 for _ in inbox.iterdir())} files, "
                  f"{'identical' if not found else f'{len(found)} difference(s)'}; "
                  f"normal run: {json.dumps(counts.get('counts', counts), ensure_ascii=False)[:300]}")
            problems.extend(found)
    finally:
        if options.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import sys
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from pipeline.core.form import load_form  # noqa: E402
from pipeline.core.registry import load_registry  # noqa: E402

REGISTRY = ROOT / "templates" / "don_vi.xlsx"

# The suite is a gate: the same examples every run, so a result never depends on luck.
# `make fuzz` draws fresh examples (TONGHOP_HYPOTHESIS=explore) to look for new failures.
settings.register_profile("gate", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile(os.environ.get("TONGHOP_HYPOTHESIS", "gate"))


@pytest.fixture(scope="session")
def form():
    return load_form()


@pytest.fixture(scope="session")
def registry():
    return load_registry(REGISTRY)


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


def set_mtime(path: Path, seconds: float) -> Path:
    os.utime(path, (seconds, seconds))
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def only_run_folder(outbox: Path) -> Path:
    runs = [p for p in outbox.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(runs) == 1, runs
    return runs[0]


SAMPLE_EXPECTED = json.loads((ROOT / "tests" / "sample_inbox_expected.json").read_text(encoding="utf-8"))


def sample_submissions(document: dict = SAMPLE_EXPECTED) -> dict[tuple[str, str | None], dict]:
    """Every submissions.csv row the answer key expects, by (file, sheet): a container's members as
    "file/member", a file's `sheets` by their name, and sheet None where the key names no sheet."""
    rows: dict[tuple[str, str | None], dict] = {}
    for name, entry in document["files"].items():
        members = {f"{name}/{m}": e for m, e in entry["members"].items()} if "members" in entry else {name: entry}
        for row_name, member in members.items():
            for sheet, expected in (member["sheets"].items() if "sheets" in member else [(None, member)]):
                rows[(row_name, sheet)] = expected
    return rows


def copy_sample_inbox(inbox: Path) -> Path:
    """The bundled inbox copied to `inbox`, with the answer key's mtimes (git keeps none)."""
    from pipeline.core.textnorm import nfc

    shutil.copytree(ROOT / "inbox", inbox)
    on_disk = {nfc(p.name): p for p in inbox.iterdir()}
    for name, entry in SAMPLE_EXPECTED["files"].items():
        set_mtime(on_disk[name], datetime.fromisoformat(entry["mtime"]).timestamp())
    return inbox


def run_sample_inbox(base: Path) -> Path:
    """The bundled inbox copied under `base` with its received times, run by the CLI."""
    csvs, folder = run_inbox(copy_sample_inbox(base / "inbox"), base)
    return folder


def run_inbox(inbox: Path, base: Path) -> tuple[dict[str, list[dict[str, str]]], Path]:
    """`tonghop run` over `inbox` (CliRunner) into `base/outbox`: its CSVs by name, and its run folder."""
    from click.testing import CliRunner

    from pipeline.cli import main

    outbox = base / "outbox"
    result = CliRunner().invoke(main, ["run", "--inbox", str(inbox), "--outbox", str(outbox), "--registry",
                                       str(REGISTRY)])
    assert result.exit_code == 0, result.output
    folder = only_run_folder(outbox)
    return {name: read_csv(folder / f"{name}.csv") for name in ("submissions", "values", "issues")}, folder



def formula_parts(workbook: Path | bytes) -> list[str]:
    """Worksheet parts holding a formula element, and any relationship that leaves the file."""
    found = []
    source = io.BytesIO(workbook) if isinstance(workbook, bytes) else workbook
    with zipfile.ZipFile(source) as archive:
        for name in archive.namelist():
            text = archive.read(name).decode("utf-8", "replace")
            if name.startswith("xl/worksheets/sheet") and re.search(r"<f[ >]", text):
                found.append(name)
            if name.endswith(".rels") and 'TargetMode="External"' in text:
                found.append(name)
    return found

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from pipeline.form import load_form  # noqa: E402
from pipeline.registry import load_registry  # noqa: E402

REGISTRY = ROOT / "templates" / "don_vi.xlsx"


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

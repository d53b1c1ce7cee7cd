"""The benchmark harness end to end on a tiny inbox: it runs, measures, and tonghop judges every file.

No assertion is about speed; a shared, noisy machine makes timing assertions flaky. The numbers that
matter come from `python benchmarks/run.py` on a quiet machine.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders import HAVE_SOFFICE, HAVE_SSCONVERT

ROOT = Path(__file__).resolve().parent.parent
N = 20

pytestmark = pytest.mark.skipif(not (HAVE_SOFFICE and HAVE_SSCONVERT),
                                reason="the template pool is made with LibreOffice and Gnumeric")


@pytest.fixture(scope="module")
def smoke(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("bench")
    # Building the template pool converts a few dozen files with LibreOffice; pytest's cache keeps it
    # between sessions (the generator rebuilds it when its recipe changes).
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    pool = Path(cache.mkdir("benchmark-pool")) if cache is not None else work / "pool"
    results = work / "results.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--sizes", str(N), "--repeat", "1",
         "--cache-dir", str(work / "cache"), "--pool-dir", str(pool), "--results", str(results)],
        cwd=work, capture_output=True, text=True, encoding="utf-8", timeout=900, check=False,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(results.read_text(encoding="utf-8"))
    data["_stdout"] = done.stdout
    return data


def test_every_tool_was_timed(smoke: dict) -> None:
    size = smoke["sizes"][str(N)]
    for tool in ("tonghop", "floor", "naive"):
        median = size["median"][tool]
        assert median["runs"] == 1
        assert median["seconds"] > 0
        assert median["cpu_seconds"] > 0
        assert median["main_peak_mb"] > 0
        assert median["max_process_mb"] > 0
    assert size["ratios"]["tonghop_over_floor"] > 0
    assert size["ratios"]["naive_over_tonghop"] > 0


def test_tonghop_run_folder_has_every_file(smoke: dict) -> None:
    verification = smoke["sizes"][str(N)]["verification"]
    with open(Path(verification["run_folder"]) / "submissions.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    judged = [row for row in rows if row["status"] in ("accepted", "rejected")]
    assert len(judged) == N
    assert verification["problems"] == 0, verification["first_problems"]


def test_stage_split_and_report(smoke: dict) -> None:
    size = smoke["sizes"][str(N)]
    fine = size["fine_stages"]["stages"]
    assert fine["isolated workers (read, re-read)"] > 0
    assert 0 < fine["process/validate"] < fine["process"]
    assert fine["nightly run"] > 0
    assert "| Files |" in smoke["_stdout"]
    assert smoke["markdown"] in smoke["_stdout"]

"""The output stage's layout: no import circle, no hidden imports, one way to fail, no inbox reads."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import openpyxl
import pytest
from builders import FormSpec, default_values, write_openpyxl
from conftest import REGISTRY

from pipeline.outputs import runfolder
from pipeline.outputs.feedback import FEEDBACK_FOLDER, SHEET_ISSUES, grids_from_reads, grids_needed, write_feedback
from pipeline.stages.intake import scan
from pipeline.read.isolated import read_in_process
from pipeline.run import Options, process

YEARS = (2021, 2022, 2023)


def test_streamsheet_finds_every_xlsxwriter_internal_it_uses():
    from pipeline.outputs import streamsheet

    assert streamsheet.missing_internals() == []


# ---------------------------------------------------------------- one way to fail

def _write(registry, code: str, line: str, path: Path, values: dict | None = None) -> None:
    write_openpyxl(FormSpec(unit_line=line, values=values or default_values(
        code, quotas={y: registry.quotas[(code, y)] for y in YEARS})), path)


@pytest.fixture
def quota_case(tmp_path, registry, form):
    """One unit (DT) whose only remark comes from validation: its sheet is not kept at the first reading."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    values = default_values("DT", quotas={y: registry.quotas[("DT", y)] for y in YEARS})
    values[2022]["quota_assigned"] += 3
    _write(registry, "DT", "BCH HUYỆN ĐOÀN DẦU TIẾNG", inbox / "dt.xlsx", values)
    _write(registry, "TA", "BCH THÀNH ĐOÀN THUẬN AN", inbox / "ta.xlsx")
    consolidation = process(scan(inbox), Options(registry=REGISTRY, isolate=False), registry, form)
    assert consolidation.submissions["DT"].grid == []
    return inbox, consolidation


class _Unpicklable(Exception):
    def __init__(self, what: str, where: int) -> None:
        super().__init__(f"{what} at {where}")


@pytest.mark.parametrize("failure", [ValueError("hỏng"), _Unpicklable("hỏng", 3)], ids=["plain", "unpicklable"])
def test_the_workbook_fails_the_same_way_forked_and_inline(quota_case, tmp_path, monkeypatch, failure):
    _, consolidation = quota_case

    def broken(_consolidation, *args, **kwargs):
        raise failure

    monkeypatch.setattr(runfolder, "build_workbook", broken)
    raised = {}
    for name, parallel_from in (("inline", 10**9), ("forked", 0)):
        folder = tmp_path / name
        folder.mkdir()
        with pytest.raises(Exception) as caught:
            runfolder.write_outputs(consolidation, folder, {}, parallel_from=parallel_from)
        raised[name] = caught.value
        # The rest of the outputs were written either way: the caller discards the folder.
        assert (folder / "values.csv").exists()
    assert type(raised["inline"]) is type(raised["forked"]) is type(failure)
    assert str(raised["inline"]) == str(raised["forked"]) == str(failure)


def test_a_failed_run_leaves_no_folder(quota_case, tmp_path, monkeypatch):
    _, consolidation = quota_case
    monkeypatch.setattr(runfolder, "build_workbook", lambda *a, **k: (_ for _ in ()).throw(OSError("đĩa đầy")))
    outbox = tmp_path / "outbox"
    with pytest.raises(OSError, match="đĩa đầy"):
        runfolder.write_run(consolidation, outbox)
    assert list(outbox.iterdir()) == []


def test_the_run_folder_steps_in_a_straight_line(quota_case, tmp_path):
    """What nightly does: its own work while the workbook is written, its own file before publishing."""
    _, consolidation = quota_case
    run = runfolder.begin_run_folder(tmp_path / "outbox")
    grids = runfolder.reread_sheets(consolidation)
    with runfolder.start_workbook(consolidation, run.staging, parallel_from=0):
        runfolder.write_exports(consolidation, run.staging, grids, run.name)
    (run.staging / "extra.eml").write_bytes(b"x")
    final = runfolder.publish_run_folder(run)
    assert final == tmp_path / "outbox" / run.name
    assert {"tong_hop.xlsx", "values.csv", "summary.json", "extra.eml", FEEDBACK_FOLDER} <= {
        p.name for p in final.iterdir()}


# ---------------------------------------------------------------- no inbox reads in the output stage

def test_grids_from_reads_refuses_a_read_of_other_bytes(quota_case, caplog):
    _, consolidation = quota_case
    outcomes = grids_needed(consolidation)
    assert [o.unit for o in outcomes] == ["DT"]
    reads = read_in_process([o.path for o in outcomes], consolidation.form)
    assert list(grids_from_reads(outcomes, reads)) == ["DT"]
    other = [[dataclasses.replace(reads[0][0], sha256="0" * 64)]]
    assert grids_from_reads(outcomes, other) == {}
    assert any("dt.xlsx" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError):
        grids_from_reads(outcomes, [])


def test_write_feedback_never_opens_an_inbox_file(quota_case, tmp_path):
    inbox, consolidation = quota_case
    grids = runfolder.reread_sheets(consolidation)
    shutil.rmtree(inbox)
    [path] = write_feedback(consolidation, tmp_path / "out", grids)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == [SHEET_ISSUES, "Biểu mẫu"]
    # Without the grids, the same copy lists the remarks alone (and still opens nothing).
    [path] = write_feedback(consolidation, tmp_path / "bare", {})
    assert openpyxl.load_workbook(path).sheetnames == [SHEET_ISSUES]

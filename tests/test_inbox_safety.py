"""Inbox entries swapped after the scan: never followed, never waited on, read once, shown only as judged.

The scan (intake.scan) lists regular files; between it and the reading, or between the reading and
the feedback copies, anyone with access to the shared inbox folder may replace an entry by a pipe, a
link or another unit's file. Every test builds real .xlsx submissions and runs the real pipeline (with
reader processes, and in this process); a run that would block is caught by a guard thread.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from pathlib import Path

import openpyxl
import pytest
from builders import FormSpec, default_values, write_openpyxl
from conftest import REGISTRY, only_run_folder

import pipeline.read.spreadsheet
from pipeline.outputs.feedback import FEEDBACK_FOLDER, SHEET_ISSUES
from pipeline.stages.intake import scan
from pipeline.read.isolated import IsolationSettings
from pipeline.run import Options, process
from pipeline.outputs.runfolder import write_run

YEARS = (2021, 2022, 2023)
LINES = {"DT": "BCH HUYỆN ĐOÀN DẦU TIẾNG", "TA": "BCH THÀNH ĐOÀN THUẬN AN", "PG": "BCH HUYỆN ĐOÀN PHÚ GIÁO",
         "BC": "BCH THÀNH ĐOÀN BẾN CÁT"}
GUARD_SECONDS = 45  # a run of a handful of files takes a few seconds; a blocked one never ends

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
needs_nofollow = pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="links refused at open time only")
both_modes = pytest.mark.parametrize("isolate", [True, False], ids=["isolated", "in-process"])


def _values(registry, code: str) -> dict:
    return default_values(code, quotas={y: registry.quotas[(code, y)] for y in YEARS})


def _write(registry, code: str, path: Path, values: dict | None = None) -> FormSpec:
    spec = FormSpec(unit_line=LINES[code], values=values or _values(registry, code))
    write_openpyxl(spec, path)
    return spec


def _options(isolate: bool = True) -> Options:
    return Options(registry=REGISTRY, isolate=isolate, isolation=IsolationSettings(workers=2, timeout_seconds=10))


def _codes(outcome) -> list[str]:
    return [i.code for i in outcome.issues]


def _unblock(fifos: list[Path]) -> None:
    """Give a reader stuck on a pipe its end of file (the code under test failed): open, close."""
    for fifo in fifos:
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass  # nobody is reading it (yet)


def _guarded(call, *args, fifos: list[Path] = (), seconds: float = GUARD_SECONDS):
    """`call(*args)` in a thread; fails the test when it has not returned after `seconds`."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = call(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target, name="guarded-run", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        # Free the blocked reader(s), so the stuck run does not outlive the test (a worker first, then
        # this process's second open of the same pipe).
        end = time.monotonic() + 30
        while thread.is_alive() and time.monotonic() < end:
            _unblock(list(fifos))
            thread.join(0.2)
        pytest.fail(f"the run blocked: still running after {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.fixture
def three_units(tmp_path, registry):
    """An inbox of three valid submissions (DT, TA, PG), each accepted as it stands."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for code, name in (("DT", "dt.xlsx"), ("TA", "ta.xlsx"), ("PG", "pg.xlsx")):
        _write(registry, code, inbox / name)
    return inbox


# ---------------------------------------------------------------- (a) a pipe swapped in after the scan

@needs_fifo
@both_modes
def test_entry_swapped_for_a_fifo_after_the_scan_is_refused_and_the_run_goes_on(three_units, registry, form,
                                                                                isolate):
    files = scan(three_units)
    assert [f.name for f in files] == ["dt.xlsx", "pg.xlsx", "ta.xlsx"]
    victim = three_units / "pg.xlsx"
    victim.unlink()
    os.mkfifo(victim)

    result = _guarded(process, files, _options(isolate), registry, form, fifos=[victim])

    by_name = {o.name: o for o in result.files}
    pipe = by_name["pg.xlsx"]
    assert pipe.status == "rejected" and _codes(pipe) == ["file_changed"], _codes(pipe)
    assert "không còn là tệp thông thường" in pipe.issues[0].message and "FIFO" in pipe.issues[0].message
    assert pipe.sha256 == "" and not pipe.values
    for name, code in (("dt.xlsx", "DT"), ("ta.xlsx", "TA")):
        assert (by_name[name].status, by_name[name].unit) == ("accepted", code), _codes(by_name[name])
    assert "PG" in result.missing


# ---------------------------------------------------------------- (b) a link swapped in after the scan

@needs_nofollow
@both_modes
def test_entry_swapped_for_a_link_to_a_valid_submission_is_not_followed(three_units, tmp_path, registry, form,
                                                                       isolate):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    target = outside / "bc.xlsx"
    _write(registry, "BC", target)
    files = scan(three_units)
    victim = three_units / "pg.xlsx"
    victim.unlink()
    victim.symlink_to(target)

    result = _guarded(process, files, _options(isolate), registry, form)

    link = next(o for o in result.files if o.name == "pg.xlsx")
    assert link.status == "rejected" and _codes(link) == ["file_changed"], _codes(link)
    assert "liên kết" in link.issues[0].message
    assert link.sha256 == "" and not link.values and link.unit != "BC"
    # Nothing of the link's target reached the consolidation.
    assert "BC" not in result.submissions and "BC" in result.missing
    without = process([f for f in files if f.name != "pg.xlsx"], _options(isolate), registry, form)
    assert result.totals == without.totals


# ---------------------------------------------------------------- (c) each file is read once

@both_modes
def test_content_replaced_while_a_file_is_being_judged_does_not_mix_in(tmp_path, registry, form, monkeypatch,
                                                                      isolate):
    if isolate and not hasattr(os, "fork"):
        pytest.skip("not on Windows: the swap is patched into the reader, which only a forked worker inherits")
    """DT's file has a blank cell; another copy has a formula without a cached value in that very cell.
    The copy is moved over DT's file while DT's sheet is being located, i.e. after its bytes were read:
    the verdict must be that of the bytes read (and hashed), not a mix with the copy's."""
    inbox, spare = tmp_path / "inbox", tmp_path / "spare"
    inbox.mkdir()
    spare.mkdir()
    values = _values(registry, "DT")
    values[2023]["admitted_students"] = None
    original = inbox / "dt.xlsx"
    spec = _write(registry, "DT", original, values)
    judged = original.read_bytes()
    swapped_values = _values(registry, "DT")
    swapped_values[2023]["admitted_students"] = "=1+2"
    replacement = spare / "dt.xlsx"
    _write(registry, "DT", replacement, swapped_values)
    _write(registry, "TA", inbox / "ta.xlsx")

    # What DT's bytes are judged as, read alone, with nothing moving.
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copyfile(original, alone / "dt.xlsx")
    reference = process(scan(alone), _options(isolate), registry, form).submissions["DT"]
    cell = spec.cell_of(2023, "admitted_students")
    assert cell in {i.cell for i in reference.issues} and "formula_no_value" not in _codes(reference)

    real_locate = pipeline.read.spreadsheet.locate_form

    def locate_then_swap(grid, merged, form_definition, sheet_name):
        # Runs in the reader worker (forked with this patch) or here, after the file's bytes were read.
        if replacement.exists() and "BCH HUYỆN ĐOÀN DẦU TIẾNG" in str(grid[:8]):
            os.replace(replacement, original)
        return real_locate(grid, merged, form_definition, sheet_name)

    monkeypatch.setattr(pipeline.read.spreadsheet, "locate_form", locate_then_swap)
    files = scan(inbox)
    result = _guarded(process, files, _options(isolate), registry, form)

    assert not replacement.exists(), "the swap did not happen: the test proves nothing"
    outcome = result.submissions["DT"]
    assert outcome.sha256 == hashlib.sha256(judged).hexdigest()
    assert [(i.code, i.cell, i.found) for i in outcome.issues] == \
        [(i.code, i.cell, i.found) for i in reference.issues]
    assert outcome.values == reference.values and outcome.status == reference.status
    assert result.submissions["TA"].status == "accepted"


def test_the_safe_read_refuses_what_is_not_a_regular_file_and_hashes_what_it_read(tmp_path):
    from pipeline.read.screen import FileTooLarge, Limits, NotRegularFile, read_inbox_file

    data = b"PK\x03\x04" + os.urandom(5000)
    plain = tmp_path / "plain.xlsx"
    plain.write_bytes(data)
    assert read_inbox_file(plain) == data
    (tmp_path / "empty.xlsx").write_bytes(b"")
    assert read_inbox_file(tmp_path / "empty.xlsx") == b""
    with pytest.raises(FileTooLarge) as too_large:
        read_inbox_file(plain, Limits(max_file_bytes=1000))
    assert too_large.value.size == len(data) and too_large.value.sha256 == hashlib.sha256(data).hexdigest()
    (tmp_path / "folder.xlsx").mkdir()
    with pytest.raises(NotRegularFile):
        read_inbox_file(tmp_path / "folder.xlsx")
    if hasattr(os, "O_NOFOLLOW"):
        (tmp_path / "link.xlsx").symlink_to(plain)
        with pytest.raises(NotRegularFile):
            read_inbox_file(tmp_path / "link.xlsx")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.xlsx")
        started = time.monotonic()
        with pytest.raises(NotRegularFile):
            _guarded(read_inbox_file, tmp_path / "pipe.xlsx", fifos=[tmp_path / "pipe.xlsx"], seconds=10)
        assert time.monotonic() - started < 5


def test_a_file_over_the_cap_keeps_its_verdict_and_hash_and_a_link_to_one_is_not_followed(tmp_path, form):
    from pipeline.read.isolated import read_in_process
    from pipeline.read.screen import Limits

    big = tmp_path / "big.xlsx"
    data = b"PK\x03\x04" + b"\x00" * 4000
    big.write_bytes(data)
    paths = [big]
    if hasattr(os, "O_NOFOLLOW"):
        (tmp_path / "link.xlsx").symlink_to(big)
        paths.append(tmp_path / "link.xlsx")
    outcomes = [only for [only] in read_in_process(paths, form, Limits(max_file_bytes=1000))]
    assert [i.code for i in outcomes[0].result.issues] == ["file_too_large"]
    assert outcomes[0].sha256 == hashlib.sha256(data).hexdigest()
    if len(outcomes) > 1:
        assert [i.code for i in outcomes[1].result.issues] == ["file_changed"] and outcomes[1].sha256 == ""


# ---------------------------------------------------------------- (d) feedback copies show the judged bytes

def _cell_texts(book) -> list[str]:
    return [str(c.value) for sheet in book.worksheets for row in sheet.iter_rows() for c in row
            if c.value is not None]


@pytest.mark.parametrize("swap", ["another_unit", "fifo"])
def test_feedback_copy_never_shows_a_sheet_other_than_the_one_judged(tmp_path, registry, form, caplog, swap):
    """DT's only remark comes from validation, so its sheet is read again for the copy (see
    runfolder.reread_sheets); by then its file has been replaced."""
    if swap == "fifo" and not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this system")
    inbox, spare = tmp_path / "inbox", tmp_path / "spare"
    inbox.mkdir()
    spare.mkdir()
    values = _values(registry, "DT")
    values[2022]["quota_assigned"] += 3
    _write(registry, "DT", inbox / "dt.xlsx", values)
    ta_values = _values(registry, "TA")
    _write(registry, "TA", spare / "ta.xlsx", ta_values)
    consolidation = process(scan(inbox), Options(registry=REGISTRY), registry, form)
    outcome = consolidation.submissions["DT"]
    assert _codes(outcome) == ["quota_mismatch"] and outcome.grid == []  # its grid will be read again

    victim = inbox / "dt.xlsx"
    if swap == "fifo":
        victim.unlink()
        os.mkfifo(victim)
    else:
        os.replace(spare / "ta.xlsx", victim)
    outbox = tmp_path / "outbox"
    with caplog.at_level(logging.WARNING, logger="pipeline.outputs.feedback"):
        _guarded(write_run, consolidation, outbox, fifos=[victim] if swap == "fifo" else [])

    copy = only_run_folder(outbox) / FEEDBACK_FOLDER / "DT.xlsx"
    book = openpyxl.load_workbook(copy)
    assert book.sheetnames == [SHEET_ISSUES], "no sheet but the remarks: the file is no longer the one judged"
    texts = _cell_texts(book)
    assert not any("THUẬN AN" in text for text in texts)
    assert "Huyện đoàn Dầu Tiếng (DT)" in texts and any("chỉ tiêu" in text.lower() for text in texts)
    assert any("dt.xlsx" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)

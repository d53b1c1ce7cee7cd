"""The pipeline against files built to break it: bombs, entities, lies in headers, crashes, kill -9.

Every hostile file must end as one `rejected` row with an issue that says what is wrong with it,
while the valid submissions beside it are consolidated exactly as if the hostile ones were absent.
"""

from __future__ import annotations

import csv
import email
import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from hostile import (
    ACCEPTED_HOSTILE,
    CORPUS,
    EVIL_FORMULA,
    METRICS,
    VALID,
    YEARS,
    Hostile,
    Valid,
    aborts_expected,
    bomb_empty_cells,
    form_values,
    large_legal,
    read_in_child,
    soffice_convert,
    truncated_xls,
    unterminated_tags,
    write_form,
    xls_far_dimension,
    zip_version_too_new,
)

from pipeline.cli import main
from pipeline.core.form import load_form
from pipeline.read.isolated import IsolationSettings, ReaderPool
from pipeline.core.issues import Issue
from pipeline.read.spreadsheet import ReadResult
from pipeline.read.screen import Limits, screen

REPO = Path(__file__).resolve().parents[1]
REGISTRY = REPO / "templates" / "don_vi.xlsx"
RUN_FILES = ("submissions.csv", "values.csv", "totals.csv", "issues.csv", "tong_hop.xlsx")
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

# Inbox junk: recognised by name and never opened, whatever the bytes inside.
JUNK = {"~$bomb.xlsx": "a zip bomb behind an Office lock-file name", "ghi chu.txt": "a note"}


@dataclass(frozen=True)
class Defect:
    """A file that once escaped screening and reached a parser that crashed; each has its own test below."""

    name: str
    codes: frozenset[str]


DEFECTS = (
    Defect("zip_version_25.xlsx", frozenset({"file_unreadable"})),
    Defect("download_cut_short.xls", frozenset({"file_unreadable"})),
    Defect("xls_far_dimension.xls", frozenset({"sheet_too_large", "file_unreadable"})),
)


def csv_cell(text: str) -> str:
    """How the exports must write a text: a leading formula trigger is defused with an apostrophe."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def run_folders(outbox: Path) -> list[Path]:
    return sorted(p for p in outbox.iterdir() if p.is_dir() and not p.name.startswith("."))


def staging_folders(outbox: Path) -> list[Path]:
    return sorted(p for p in outbox.iterdir() if p.is_dir() and p.name.startswith("."))


def fingerprint(folder: Path) -> dict[str, tuple[str, int, int]]:
    """sha256, size and mtime (ns) of every file below `folder`."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            st = path.stat()
            found[path.relative_to(folder).as_posix()] = (
                hashlib.sha256(path.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns)
    return found


def cli_args(inbox: Path, outbox: Path, config: Path, *extra: str) -> list[str]:
    return ["run", "--inbox", str(inbox), "--outbox", str(outbox), "--registry", str(REGISTRY),
            "--config", str(config), "--force", *extra]


def empty_config(folder: Path) -> Path:
    # an explicit empty configuration, so a tonghop.toml in the working directory cannot change the run
    path = folder / "tonghop.toml"
    path.write_text("", encoding="utf-8")
    return path


@pytest.fixture
def quiet_aborts():
    with aborts_expected():
        yield


# ---------------------------------------------------------------- the corpus, built once


@pytest.fixture(scope="session")
def form():
    return load_form()


@pytest.fixture(scope="session")
def legacy_xls(tmp_path_factory) -> bytes | None:
    """A genuine BIFF8 .xls of a valid form, written by LibreOffice; None without LibreOffice."""
    folder = tmp_path_factory.mktemp("legacy")
    source = write_form(folder / "legacy.xlsx", "BCH ĐOÀN TRƯỜNG CAO ĐẲNG Y TẾ BÌNH DƯƠNG", form_values(1500))
    converted = soffice_convert(source, "xls", folder)
    return converted.read_bytes() if converted else None


@pytest.fixture(scope="session")
def corpus(tmp_path_factory, legacy_xls) -> dict[str, Path]:
    """Every hostile, defect, valid and junk file, by inbox name."""
    folder = tmp_path_factory.mktemp("corpus")
    files: dict[str, Path] = {}
    for item in (*CORPUS, *VALID, *ACCEPTED_HOSTILE):
        files[item.name] = item.make(folder / item.name)
    files["zip_version_25.xlsx"] = zip_version_too_new(folder / "zip_version_25.xlsx")
    if legacy_xls is not None:
        files["download_cut_short.xls"] = truncated_xls(folder / "download_cut_short.xls", legacy_xls)
        files["xls_far_dimension.xls"] = xls_far_dimension(folder / "xls_far_dimension.xls", legacy_xls)
    files["~$bomb.xlsx"] = bomb_empty_cells(folder / "~$bomb.xlsx")
    (folder / "ghi chu.txt").write_text("Gửi kèm báo cáo.", encoding="utf-8")
    files["ghi chu.txt"] = folder / "ghi chu.txt"
    return files


def fill_inbox(inbox: Path, corpus: dict[str, Path], names) -> Path:
    inbox.mkdir(parents=True)
    for name in names:
        shutil.copy2(corpus[name], inbox / name)
    return inbox


def test_corpus_stays_small(corpus):
    sizes = {name: path.stat().st_size for name, path in corpus.items()}
    assert max(sizes.values()) < 2_500_000, sizes
    assert sum(sizes.values()) < 8_000_000, sizes


# ---------------------------------------------------------------- 1. each file on its own

SCREENED = [h for h in CORPUS if h.screened]


@pytest.mark.parametrize("hostile", SCREENED, ids=lambda h: h.name)
def test_screen_names_the_threat(hostile: Hostile, corpus):
    verdict = screen(corpus[hostile.name])
    assert verdict.issue is not None, f"{hostile.name} passed screening as {verdict.kind}"
    assert verdict.issue.code in hostile.codes


@pytest.mark.parametrize("item", [*CORPUS, *ACCEPTED_HOSTILE, *VALID], ids=lambda h: h.name)
def test_direct_read_never_raises(item, corpus, form):
    outcome = read_in_child(corpus[item.name], form)
    assert not outcome.raised, outcome.raised
    assert not outcome.signal, f"reader died by signal {outcome.signal}"
    result = outcome.result
    assert isinstance(result, ReadResult)
    assert all(isinstance(issue, Issue) for issue in result.issues)
    if isinstance(item, Hostile) and item.screened:
        assert result.format == "rejected"
        assert {i.code for i in result.issues} & item.codes
    if isinstance(item, Valid):
        assert not result.rejected, [i.code for i in result.issues]
        assert result.form is not None and result.form.sheet == item.title


def _process_alone(path: Path, name: str, tmp_path: Path):
    from pipeline.stages.intake import scan
    from pipeline.run import Options, process

    inbox = tmp_path / "alone"
    inbox.mkdir()
    shutil.copy2(path, inbox / name)
    options = Options(registry=REGISTRY, isolation=IsolationSettings(workers=1, timeout_seconds=60))
    consolidation = process(scan(inbox), options)
    [outcome] = consolidation.files
    return outcome


@pytest.mark.parametrize("hostile", CORPUS, ids=lambda h: h.name)
def test_each_hostile_file_alone_is_rejected_with_its_code(hostile: Hostile, corpus, tmp_path):
    outcome = _process_alone(corpus[hostile.name], hostile.name, tmp_path)
    errors = {i.code for i in outcome.issues if i.severity == "error"}
    assert outcome.status == "rejected"
    assert errors & hostile.codes, errors
    assert errors <= hostile.codes | hostile.extra_codes, errors
    if hostile.cell:
        assert any(i.cell == hostile.cell for i in outcome.issues if i.code in hostile.codes)


@pytest.mark.parametrize("valid", ACCEPTED_HOSTILE, ids=lambda v: v.name)
def test_each_disguised_valid_file_alone_is_accepted(valid: Valid, corpus, tmp_path):
    outcome = _process_alone(corpus[valid.name], valid.name, tmp_path)
    assert outcome.status == "accepted", [(i.code, i.message) for i in outcome.issues]
    assert outcome.unit == valid.unit
    expected = {(year, metric): valid.values[year][j] for year in YEARS for j, metric in enumerate(METRICS)}
    assert outcome.values == expected


# ---------------------------------------------------------------- 2–3. one inbox holding everything


@dataclass
class Run:
    inbox: Path
    folder: Path
    before: dict
    after: dict
    exit_code: int
    output: str
    names: list[str]


def _everything(corpus) -> list[str]:
    return sorted(corpus)


def _accepted(corpus) -> list[str]:
    return [v.name for v in (*VALID, *ACCEPTED_HOSTILE)]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, corpus) -> Run:
    root = tmp_path_factory.mktemp("full")
    names = _everything(corpus)
    inbox = fill_inbox(root / "inbox", corpus, names)
    before = fingerprint(inbox)
    with aborts_expected():
        result = CliRunner().invoke(main, cli_args(inbox, root / "outbox", empty_config(root)),
                                    catch_exceptions=False)
    after = fingerprint(inbox)
    folders = run_folders(root / "outbox")
    assert len(folders) == 1, (result.output, folders)
    return Run(inbox, folders[0], before, after, result.exit_code, result.output, names)


@pytest.fixture(scope="module")
def valid_only_run(tmp_path_factory, corpus) -> Path:
    root = tmp_path_factory.mktemp("valid_only")
    inbox = fill_inbox(root / "inbox", corpus, _accepted(corpus))
    result = CliRunner().invoke(main, cli_args(inbox, root / "outbox", empty_config(root)), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [folder] = run_folders(root / "outbox")
    return folder


def test_run_exits_cleanly_and_writes_every_output(full_run):
    assert full_run.exit_code == 0, full_run.output
    for name in RUN_FILES:
        assert (full_run.folder / name).is_file(), name


def _inbox_name(file: str, names) -> str:
    """The inbox file a row is of: itself, or the archive or mail it is a member of ("a.zip/b.xlsx")."""
    return next((n for n in names if file == n or file.startswith(n + "/")), file)


def test_every_inbox_file_has_one_row_with_the_right_status(full_run, corpus):
    rows = [r for r in read_csv(full_run.folder / "submissions.csv") if r["file"]]
    names = {csv_cell(name) for name in full_run.names}
    by_file = {}
    for row in rows:
        name = _inbox_name(row["file"], names)
        assert name not in by_file, f"two rows for {name}"
        by_file[name] = row
    assert set(by_file) == {csv_cell(name) for name in full_run.names}
    for hostile in CORPUS:
        assert by_file[csv_cell(hostile.name)]["status"] == "rejected", hostile.name
    for defect in DEFECTS:
        if defect.name in corpus:
            assert by_file[csv_cell(defect.name)]["status"] == "rejected", defect.name
    for valid in (*VALID, *ACCEPTED_HOSTILE):
        row = by_file[csv_cell(valid.name)]
        assert (row["status"], row["unit_code"]) == ("accepted", valid.unit), valid.name
    for junk in JUNK:
        assert by_file[csv_cell(junk)]["status"] == "ignored", junk


def _issues_by_file(folder: Path, names=()) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for row in read_csv(folder / "issues.csv"):
        found.setdefault(_inbox_name(row["file"], names), []).append(row)
    return found


def test_each_hostile_file_is_rejected_with_its_own_code(full_run, corpus):
    issues = _issues_by_file(full_run.folder, {csv_cell(name) for name in full_run.names})
    for hostile in CORPUS:
        rows = issues.get(csv_cell(hostile.name), [])
        errors = {r["code"] for r in rows if r["severity"] == "error"}
        assert errors & hostile.codes, (hostile.name, errors)
        assert errors <= hostile.codes | hostile.extra_codes, (hostile.name, errors)
        if hostile.cell:
            assert any(r["cell"] == hostile.cell for r in rows if r["code"] in hostile.codes), hostile.name
    for defect in DEFECTS:
        if defect.name in corpus:
            errors = {r["code"] for r in issues.get(csv_cell(defect.name), []) if r["severity"] == "error"}
            assert errors & defect.codes, (defect.name, errors)


def test_valid_submissions_consolidate_as_if_alone(full_run, valid_only_run):
    for name in ("values.csv", "totals.csv"):
        assert (full_run.folder / name).read_bytes() == (valid_only_run / name).read_bytes(), name


def test_values_are_what_the_units_wrote(full_run):
    rows = read_csv(full_run.folder / "values.csv")
    got = {(r["unit_code"], int(r["year"]), r["metric"]): int(r["value"]) for r in rows}
    expected = {(v.unit, year, metric): v.values[year][j]
                for v in (*VALID, *ACCEPTED_HOSTILE) for year in YEARS for j, metric in enumerate(METRICS)}
    assert got == expected


def test_visible_sheet_wins_over_hidden_form(full_run):
    [item] = [v for v in ACCEPTED_HOSTILE if v.kind == "hidden_first"]
    rows = [r for r in read_csv(full_run.folder / "values.csv") if r["unit_code"] == item.unit]
    assert {r["sheet"] for r in rows} == {"Biểu mẫu"}
    members = {int(r["year"]): int(r["value"]) for r in rows if r["metric"] == "members_total"}
    assert members == {year: item.values[year][0] for year in YEARS}
    assert all(members[year] != item.hidden_values[year][0] for year in YEARS)


def test_inbox_is_never_modified(full_run):
    assert full_run.after == full_run.before


def _zip_members(data: bytes) -> list[str]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.namelist()
    except zipfile.BadZipFile:
        return []


def _attachments(path: Path) -> list[tuple[str, bytes]]:
    message = email.message_from_bytes(path.read_bytes())
    return [(part.get_filename() or "", part.get_payload(decode=True) or b"")
            for part in message.walk() if part.get_filename()]


def test_outputs_never_carry_the_macro(full_run):
    blobs: list[tuple[str, bytes]] = []
    for path in full_run.folder.rglob("*"):
        if path.is_file():
            blobs.append((path.name, path.read_bytes()))
            if path.suffix == ".eml":
                blobs.extend(_attachments(path))
    for name, data in blobs:
        assert not name.lower().endswith((".xlsm", ".bin")), name
        assert "vba" not in name.lower(), name
        assert not any("vba" in member.lower() for member in _zip_members(data)), name
        assert b"Workbook_Open" not in data, name


def test_workbook_holds_no_formula_and_no_foreign_link(full_run):
    book = openpyxl.load_workbook(full_run.folder / "tong_hop.xlsx")
    texts = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{sheet.title}!{cell.coordinate}: {cell.value!r}"
                if cell.hyperlink is not None:
                    target = cell.hyperlink.target or ""
                    assert "evil" not in target and not target.startswith(("http", "file")), target
                if isinstance(cell.value, str):
                    texts.append(cell.value)
    # the text did travel (as text): the unit line of "=cmd.xlsx" is quoted in its issue
    assert any("HYPERLINK" in text for text in texts)


def test_csv_exports_defuse_formula_triggers(full_run):
    for path in full_run.folder.glob("*.csv"):
        with open(path, newline="", encoding="utf-8") as handle:
            for line, row in enumerate(csv.reader(handle), 1):
                for field in row:
                    assert not field.startswith(FORMULA_TRIGGERS), f"{path.name}:{line}: {field!r}"
    files = {r["file"] for r in read_csv(full_run.folder / "submissions.csv")}
    assert {"'=cmd.xlsx", "'-Phu Giao.xlsx", "'@Thuan An.xlsx"} <= files
    sheets = {r["sheet"] for r in read_csv(full_run.folder / "values.csv")}
    assert "'+1 Biểu mẫu" in sheets
    issues = read_csv(full_run.folder / "issues.csv")
    assert any(r["file"] == "'=cmd.xlsx" and EVIL_FORMULA in r["message"] for r in issues)


def test_same_run_as_a_real_process(tmp_path, corpus, full_run):
    inbox = fill_inbox(tmp_path / "inbox", corpus, full_run.names)
    completed = subprocess.run([sys.executable, "-m", "pipeline", *cli_args(inbox, tmp_path / "outbox",
                                                                          empty_config(tmp_path))],
                               cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-2000:]
    [folder] = run_folders(tmp_path / "outbox")
    for name in ("submissions.csv", "values.csv", "totals.csv"):
        assert (folder / name).read_bytes() == (full_run.folder / name).read_bytes(), name
    codes = lambda f: sorted((r["file"], r["code"], r["cell"]) for r in read_csv(f / "issues.csv"))  # noqa: E731
    assert codes(folder) == codes(full_run.folder)


# ---------------------------------------------------------------- 4. crash and timeout isolation

RAISED_LIMITS = Limits(max_rows=10**9, max_columns=10**6, max_cells=10**15)


def _assert_read_as(outcome, valid: Valid) -> None:
    result = outcome.result
    assert not result.rejected, [(i.code, i.message) for i in result.issues]
    cells = {row.year: row.cells for row in result.form.rows}
    for year in YEARS:
        assert [cells[year][metric].value for metric in METRICS] == valid.values[year]


def test_parser_abort_takes_down_only_its_worker(corpus, form, quiet_aborts):
    """With screening limits out of the way the far-corner cell reaches the parser, which aborts."""
    valid = [v for v in VALID]
    paths = [corpus[valid[0].name], corpus["far_corner.xlsx"], corpus[valid[1].name], corpus[valid[2].name],
             corpus["far_corner.xlsx"], corpus[valid[3].name]]
    with ReaderPool(form, IsolationSettings(workers=2, timeout_seconds=30, memory_mb=768), RAISED_LIMITS) as pool:
        outcomes = [only for [only] in pool.read_all(paths)]
    assert len(outcomes) == len(paths)
    for index in (1, 4):
        assert [i.code for i in outcomes[index].result.issues] == ["reader_crashed"]
        assert outcomes[index].sha256 == hashlib.sha256(corpus["far_corner.xlsx"].read_bytes()).hexdigest()
    for index, item in ((0, valid[0]), (2, valid[1]), (3, valid[2]), (5, valid[3])):
        _assert_read_as(outcomes[index], item)


def test_files_read_before_a_crash_in_the_same_batch_are_read_again(corpus, form, quiet_aborts):
    """One worker, chunks of three: the crash comes after two files whose outcomes were not sent yet."""
    valid = list(VALID)
    paths = [corpus[valid[0].name], corpus[valid[1].name], corpus["far_corner.xlsx"],
             corpus[valid[2].name], corpus[valid[3].name], corpus[valid[0].name],
             corpus[valid[1].name], corpus[valid[2].name], corpus[valid[3].name],
             corpus[valid[0].name], corpus[valid[1].name], corpus[valid[2].name]]
    with ReaderPool(form, IsolationSettings(workers=1, timeout_seconds=30, memory_mb=768), RAISED_LIMITS) as pool:
        outcomes = [only for [only] in pool.read_all(paths)]
    assert [i.code for i in outcomes[2].result.issues] == ["reader_crashed"]
    expected = {v.name: v for v in valid}
    for index, path in enumerate(paths):
        if index != 2:
            _assert_read_as(outcomes[index], expected[path.name])


@pytest.fixture(scope="session")
def slow_legal(tmp_path_factory) -> Path:
    return large_legal(tmp_path_factory.mktemp("slow") / "large_legal.xlsx")


def test_large_legal_file_is_still_read(slow_legal, form):
    """The timeout test below relies on this file being legal (only slow), not on a rejection."""
    result = read_in_child(slow_legal, form).result
    assert isinstance(result, ReadResult) and not result.rejected, result and result.issues


def test_reader_deadline_stops_a_slow_file_and_spares_the_rest(corpus, form, slow_legal):
    # One worker, so the slow file is read between two quick ones by the same process: the
    # deadline must replace the worker and hand the queued file to its successor.
    before, after = VALID[0], VALID[1]
    paths = [corpus[before.name], slow_legal, corpus[after.name]]
    started = time.monotonic()
    # The slow file takes over a second here; the quick ones a few milliseconds.
    with ReaderPool(form, IsolationSettings(workers=1, timeout_seconds=0.5)) as pool:
        outcomes = [only for [only] in pool.read_all(paths)]
    elapsed = time.monotonic() - started
    assert [i.code for i in outcomes[1].result.issues] == ["reader_timeout"]
    _assert_read_as(outcomes[0], before)
    _assert_read_as(outcomes[2], after)
    assert elapsed < 15, elapsed


# ---------------------------------------------------------------- defects found while building this corpus


def test_screening_is_linear_on_unterminated_tags(tmp_path, form):
    path = unterminated_tags(tmp_path / "unterminated.xlsx", 64 * 1024)
    assert path.stat().st_size < 10_000
    with ReaderPool(form, IsolationSettings(workers=1, timeout_seconds=3.0)) as pool:
        [[outcome]] = pool.read_all([path])
    assert "reader_timeout" not in {i.code for i in outcome.result.issues}


def test_unsupported_zip_version_is_unreadable_not_an_exception(corpus, form):
    outcome = read_in_child(corpus["zip_version_25.xlsx"], form)
    assert not outcome.raised, outcome.raised
    assert {i.code for i in outcome.result.issues} == {"file_unreadable"}


@pytest.mark.parametrize("missing", [16, 100, 500])
def test_truncated_xls_is_unreadable_not_an_exception(missing, legacy_xls, form, tmp_path):
    if legacy_xls is None:
        pytest.skip("LibreOffice is not installed")
    path = truncated_xls(tmp_path / "cut.xls", legacy_xls, missing)
    outcome = read_in_child(path, form)
    assert not outcome.raised, outcome.raised
    assert not outcome.signal
    assert {i.code for i in outcome.result.issues} == {"file_unreadable"}


def test_xls_far_dimension_is_screened(corpus, legacy_xls, form, quiet_aborts):
    if legacy_xls is None:
        pytest.skip("LibreOffice is not installed")
    with ReaderPool(form, IsolationSettings(workers=1, timeout_seconds=30)) as pool:
        [[outcome]] = pool.read_all([corpus["xls_far_dimension.xls"]])
    assert {i.code for i in outcome.result.issues} & {"sheet_too_large", "file_unreadable"}


# ---------------------------------------------------------------- 5. kill -9 in the middle of a run


def _session_members(session: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 3 and int(fields[3]) == session and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _reap_session(session: int, grace: float) -> list[int]:
    """Wait up to `grace` seconds for the processes of `session` to go; kill and return those that stay."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        left = _session_members(session)
        if not left:
            return []
        time.sleep(0.1)
    left = _session_members(session)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


@pytest.fixture(scope="module")
def big_inbox(tmp_path_factory) -> Path:
    """400 valid files (copies of a few units' forms): a run over them takes a couple of seconds."""
    root = tmp_path_factory.mktemp("big")
    sources = [v.make(root / f"src{i}.xlsx") for i, v in enumerate(VALID)]
    inbox = root / "inbox"
    inbox.mkdir()
    for i in range(400):
        source = sources[i % len(sources)]
        shutil.copy2(source, inbox / f"bao_cao_{i:03d}_{VALID[i % len(VALID)].unit}.xlsx")
    return inbox


@dataclass
class KillReport:
    outbox: Path
    complete_before: dict
    complete_folder: Path
    staging_seen: list[str]
    staging_left: list[str]
    orphans: list[int]
    final_exit: int
    staging_after_final: list[str]
    final_output: str = ""


@pytest.fixture(scope="module")
def killed_runs(tmp_path_factory, big_inbox) -> KillReport:
    root = tmp_path_factory.mktemp("kill")
    outbox = root / "outbox"
    command = [sys.executable, "-m", "pipeline", *cli_args(big_inbox, outbox, empty_config(root))]
    first = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    [complete] = run_folders(outbox)
    complete_before = fingerprint(complete)
    staging_seen: list[str] = []
    orphans: list[int] = []
    for moment in (0.3, 0.8, 1.5, "staging"):
        process = subprocess.Popen(command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        if moment == "staging":
            # kill the moment the run starts writing its folder: the worst time to die
            deadline = time.monotonic() + 120
            while process.poll() is None and time.monotonic() < deadline and not staging_folders(outbox):
                time.sleep(0.001)
            staging_seen.extend(p.name for p in staging_folders(outbox))
        else:
            time.sleep(moment)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        orphans.extend(_reap_session(process.pid, grace=5.0))
    staging_left = [p.name for p in staging_folders(outbox)]
    final = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600)
    log = outbox / "tonghop.log"
    return KillReport(outbox, complete_before, complete, staging_seen, staging_left, orphans, final.returncode,
                      [p.name for p in staging_folders(outbox)],
                      final.stdout + final.stderr + (log.read_text(encoding="utf-8")[-4000:] if log.exists() else ""))


def test_kill_9_leaves_only_complete_run_folders(killed_runs):
    print(f"\nstaging folders seen while writing: {killed_runs.staging_seen}; "
          f"left behind after the kills: {killed_runs.staging_left}; orphan readers: {killed_runs.orphans}")
    for folder in run_folders(killed_runs.outbox):
        missing = [name for name in RUN_FILES if not (folder / name).is_file()]
        assert not missing, f"{folder.name} is incomplete: {missing}"


def test_kill_9_never_touches_an_earlier_run(killed_runs):
    assert fingerprint(killed_runs.complete_folder) == killed_runs.complete_before


def test_next_run_after_kill_9_succeeds_and_clears_staging(killed_runs):
    assert killed_runs.final_exit == 0, killed_runs.final_output
    assert killed_runs.staging_after_final == []


@pytest.fixture(scope="module")
def orphans_after_kill(tmp_path_factory, corpus, slow_legal) -> list[int]:
    """SIGKILL a run while its readers are surely alive (one is busy with a slow file), then list the
    readers still around 10 s later; they are killed before the list is returned."""
    root = tmp_path_factory.mktemp("orphans")
    inbox = fill_inbox(root / "inbox", corpus, [VALID[0].name])
    shutil.copy2(slow_legal, inbox / slow_legal.name)
    command = [sys.executable, "-m", "pipeline",
               *cli_args(inbox, root / "outbox", empty_config(root), "--timeout", "120")]
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 60
    while len(_session_members(process.pid)) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    assert process.poll() is None, "the run ended before its readers could be caught alive"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    return _reap_session(process.pid, grace=10.0)


def test_kill_9_leaves_no_orphan_reader(orphans_after_kill):
    assert orphans_after_kill == []


@pytest.mark.parametrize(
    ("sheet_xml", "too_large"),
    [
        (b'<row r="1"><c r="A1"><v>1</v></c><c r="AMJ1"/></row>', False),  # column 1024: the cap itself
        (b'<row r="1"><c r="AMK1"/></row>', True),
        (b'<row r="100000"><c r="A100000"/></row>', False),  # row 100000: the cap itself
        (b'<row r="100001"/>', True),
        (b'<c\tr="XFD1048576"/>', True),
        (b'<c r="A0000007"/>', False),  # leading zeros are still row 7
        (b'<x:c spr="ZZZZ99999999"/><c r="B2"/>', False),  # not an r attribute
        (b'<dimension ref="A1:XFD1048576"/><c r="A1"/>', True),
    ],
)
def test_sheet_extent_is_judged_from_its_references(sheet_xml, too_large):
    from pipeline.read.screen import _sheet_too_large

    assert _sheet_too_large(sheet_xml, Limits()) is too_large

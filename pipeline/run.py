"""The whole pass over an inbox: assess every file, consolidate, and write a run folder."""

from __future__ import annotations

import os
import shutil
import threading
from collections import deque
from concurrent.futures import Future
from functools import partial
from dataclasses import dataclass, field
from time import perf_counter
from datetime import date, datetime, time
from pathlib import Path
from typing import Callable, Sequence

from pipeline.consolidate import Consolidation, FileOutcome, consolidate
from pipeline.form import DEFAULT_FORM, FormDefinition, load_form
from pipeline.identify import UnitMatcher, identify
from pipeline.intake import InboxFile, scan
from pipeline.isolation import IsolationSettings, ReaderPool, ReadOutcome, read_in_process
from pipeline.issues import clip_issues, make_issue
from pipeline.normalize import Normalized, normalize_form
from pipeline.registry import Registry, load_registry
from pipeline.textnorm import printable
from pipeline.token import TOKEN_SHEET
from pipeline.token import verify as verify_token

Progress = Callable[[int, int], None]  # (files read, files to read)


@dataclass
class Options:
    registry: Path = Path("templates/don_vi.xlsx")
    form: Path = DEFAULT_FORM
    isolation: IsolationSettings = field(default_factory=IsolationSettings)
    isolate: bool = True
    deadline: date | None = None


def _describe_identification(outcome: FileOutcome, unit_line: str, ident, registry: Registry, sheet: str,
                             cell: str) -> None:
    names = registry.names
    if ident.code:
        outcome.unit, outcome.unit_source = ident.code, ident.source
        if ident.source == "file_name":
            outcome.issues.append(make_issue("unit_from_file_name", unit_line=unit_line or "(không có)",
                                             sheet=sheet, cell=cell))
        if ident.conflict:
            outcome.issues.append(make_issue("unit_name_conflict", unit_line=unit_line,
                                             other=names.get(ident.conflict, ident.conflict), sheet=sheet, cell=cell))
    elif ident.candidates:
        outcome.issues.append(make_issue("unit_ambiguous", text=ident.text,
                                         candidates=", ".join(names.get(c, c) for c in ident.candidates),
                                         sheet=sheet, cell=cell, found=ident.text))
    else:
        outcome.issues.append(make_issue("unit_unknown", unit_line=unit_line or "(không có)", file=outcome.name,
                                         sheet=sheet, cell=cell, found=unit_line))


@dataclass(slots=True)
class Prepared:
    """One file read and normalized, in the worker: all the main process needs of it."""

    sha256: str
    format: str
    sheets: tuple[str, ...]
    issues: list
    token: object = None
    located: bool = False
    sheet: str = ""
    grid: list = field(default_factory=list)
    unit_line: str = ""
    unit_line_cell: str = ""
    numbers: Normalized | None = None


def prepare(read: ReadOutcome, form: FormDefinition) -> Prepared:
    result = read.result
    located = result.form
    # Sheet names come from the submitter: shown in every output, so made printable once, here.
    prepared = Prepared(read.sha256, result.format, tuple(printable(s) for s in result.sheets), list(result.issues),
                        token=result.token)
    if located is not None:
        prepared.located = True
        prepared.sheet = printable(located.sheet)
        prepared.unit_line, prepared.unit_line_cell = located.unit_line, located.unit_line_cell
        prepared.numbers = normalize_form(located, form.years)
        if any(i.severity != "info" for i in (*prepared.issues, *prepared.numbers.issues)):
            # Likely sent back: keep the sheet. Files whose remarks come only from validation are read
            # again when their feedback copy is written (see feedback.write_feedback).
            prepared.grid = located.grid
    return prepared


class Assessor:
    """Normalizes each file in the reader workers (`finish`), identifies it here as its result arrives
    (`add`), and validates all of them at the end (`complete`).

    `finish` needs no registry, so the workers can start before the registry is loaded; results that
    arrive before it (`use_registry`) wait for it.
    """

    def __init__(self, files: list[InboxFile], form: FormDefinition, registry: Registry | None = None) -> None:
        self.form = form
        self.registry: Registry | None = None
        self.matcher: UnitMatcher | None = None
        self.outcomes = [FileOutcome(name=f.name, path=f.path, size=f.size, mtime=f.mtime) for f in files]
        self.readable = [i for i, f in enumerate(files) if not f.junk_reason]
        self.waiting: deque[tuple[int, Prepared]] = deque()
        self.pending: list[tuple[FileOutcome, object]] = []  # (outcome, SubmissionValues)
        for entry, outcome in zip(files, self.outcomes):
            if entry.junk_reason:
                outcome.status = "ignored"
                outcome.issues.append(make_issue("file_ignored", reason=entry.junk_reason))
        if registry is not None:
            self.use_registry(registry)

    def finish(self, path: Path, read: ReadOutcome) -> Prepared:
        return prepare(read, self.form)

    def use_registry(self, registry: Registry, matcher: UnitMatcher | None = None) -> None:
        self.registry, self.matcher = registry, matcher or UnitMatcher(registry)

    def add(self, readable_index: int, prepared: Prepared) -> None:
        """The prepared result of the `readable_index`-th file that is not junk."""
        if self.matcher is None:
            self.waiting.append((readable_index, prepared))
            return
        self._assess(readable_index, prepared)
        # Results that came before the registry, a few at a time: the readers are not kept waiting.
        for _ in range(min(4, len(self.waiting))):
            self._assess(*self.waiting.popleft())

    def _assess(self, readable_index: int, prepared: Prepared) -> None:
        from pipeline.validate import SubmissionValues

        registry, form = self.registry, self.form
        outcome = self.outcomes[self.readable[readable_index]]
        outcome.sha256 = prepared.sha256
        outcome.format = prepared.format
        outcome.sheets = prepared.sheets
        outcome.issues.extend(prepared.issues)
        outcome.sheet, outcome.grid = prepared.sheet, prepared.grid
        token = prepared.token
        if token is not None:
            problem = verify_token(token, form.edition, registry.codes)
            if not problem:
                outcome.unit, outcome.unit_source = token.code, "token"
            else:
                outcome.issues.append(make_issue("token_invalid", reason=problem, sheet=TOKEN_SHEET))
        if outcome.unit_source == "token":
            pass  # the province's own copy says which unit it is; names may be stale or mistyped
        else:
            ident = identify(prepared.unit_line, outcome.name, self.matcher)
            if prepared.format == "rejected":
                # Not a workbook: the file name is all there is, and its own error says what to fix.
                outcome.unit, outcome.unit_source = ident.code, ident.source
            else:
                _describe_identification(outcome, prepared.unit_line, ident, registry, outcome.sheet,
                                         prepared.unit_line_cell)
        numbers = prepared.numbers
        if numbers is None:
            return
        outcome.values, outcome.cells = numbers.values, numbers.cells
        outcome.total, outcome.total_cells = numbers.total, numbers.total_cells
        outcome.issues.extend(numbers.issues)
        allocation = {y: registry.quotas[(outcome.unit, y)] for y in form.years if (outcome.unit, y) in registry.quotas}
        self.pending.append((outcome, SubmissionValues(
            file=outcome.name, unit=outcome.unit, sheet=outcome.sheet, values=numbers.values, cells=numbers.cells,
            total=numbers.total, total_cells=numbers.total_cells, allocation=allocation)))

    def complete(self) -> list[FileOutcome]:
        """Validate every submission in one pass; outcomes in inbox order."""
        from pipeline.validate import validate

        if self.matcher is None:
            raise RuntimeError("Assessor.complete() needs the registry (use_registry)")
        while self.waiting:
            self._assess(*self.waiting.popleft())
        found = validate([values for _, values in self.pending], self.form)
        for (outcome, _), issues in zip(self.pending, found):
            outcome.issues.extend(issues)
        for outcome in self.outcomes:
            outcome.issues = clip_issues(sorted(outcome.issues, key=_issue_order))
            if not any(i.severity != "info" for i in outcome.issues):
                outcome.grid = []  # only files sent back with remarks need their sheet kept
        return self.outcomes


def _issue_order(issue) -> tuple:
    digits = "".join(ch for ch in issue.cell if ch.isdigit())
    letters = "".join(ch for ch in issue.cell if ch.isalpha())
    severity = {"error": 0, "warning": 1, "info": 2}[issue.severity]
    return (int(digits) if digits else 0, letters.rjust(3), severity, issue.code)


def read_files(files: list[InboxFile], form: FormDefinition, options: Options,
               progress: Progress | None = None,
               on_result: Callable[[int, ReadOutcome], None] | None = None,
               finish: Callable[[Path, ReadOutcome], object] | None = None,
               meanwhile: Sequence[Callable[[], None]] = ()) -> list:
    """Read every file that is not junk; `on_result(i, outcome)` sees each result as it arrives (and the
    pool then keeps none of them). `meanwhile` runs in threads of this process once the workers are
    forked (forking while a thread holds a lock would hand the lock to the workers), or before reading
    when isolation is off."""
    paths = [f.path for f in files if not f.junk_reason]
    if not options.isolate or not paths:
        for job in meanwhile:
            job()
        reads = read_in_process(paths, form, finish=finish) if paths else []
        for index, read in enumerate(reads):
            if on_result is not None:
                on_result(index, read)
        return reads
    with ReaderPool(form, options.isolation, finish=finish) as pool:
        # Workers are forked by now; the validation stack (pandas, pandera: ~0.9 s, and what they load
        # on first use) loads in this process while they read, instead of after them.
        threads = [threading.Thread(target=job, name=f"meanwhile-{n}", daemon=True)
                   for n, job in enumerate((*meanwhile, partial(_import_validation_stack, form)))]
        for thread in threads:
            thread.start()
        reads = pool.read_all(paths, progress=progress, on_result=on_result)
    for thread in threads:
        thread.join()
    return reads


def _import_validation_stack(form: FormDefinition) -> None:
    try:
        from pipeline.validate import warm_up

        warm_up(form)
    except Exception:  # the import is repeated, and reported, where validation really needs it
        pass


def mark_late(outcomes: list[FileOutcome], deadline: date) -> None:
    """Files received after the deadline's last second carry a warning."""
    cutoff = datetime.combine(deadline, time.max).timestamp()
    for outcome in outcomes:
        if outcome.status != "ignored" and outcome.mtime > cutoff:
            received = datetime.fromtimestamp(outcome.mtime)
            outcome.issues.append(make_issue("late_submission", received=received.strftime("%d/%m/%Y %H:%M"),
                                             deadline=deadline.strftime("%d/%m/%Y"), unit=outcome.unit,
                                             file=outcome.name))


def process(files: list[InboxFile], options: Options, registry: Registry | None = None,
            form: FormDefinition | None = None, progress: Progress | None = None) -> Consolidation:
    """Read, identify, normalize, validate and consolidate `files`.

    Without `registry`, `options.registry` is loaded while the workers already read; a RegistryError
    stops the run as soon as it is known.
    """
    form = form or load_form(options.form)
    clock = perf_counter()
    assessor = Assessor(files, form, registry)
    loading: Future[tuple[Registry, UnitMatcher]] = Future()

    def load() -> None:
        try:
            loaded = load_registry(options.registry)
            loading.set_result((loaded, UnitMatcher(loaded)))
        except BaseException as exc:  # raised again in the main thread by loading.result()
            loading.set_exception(exc)

    def on_result(index: int, prepared: Prepared) -> None:
        if assessor.matcher is None and loading.done():
            assessor.use_registry(*loading.result())
        assessor.add(index, prepared)

    read_files(files, form, options, progress, on_result=on_result, finish=assessor.finish,
               meanwhile=() if registry is not None else (load,))
    if assessor.matcher is None:
        assessor.use_registry(*loading.result())
    read_done = perf_counter()
    outcomes = assessor.complete()
    if options.deadline is not None:
        mark_late(outcomes, options.deadline)
    validate_done = perf_counter()
    result = consolidate(outcomes, assessor.registry, form)
    result.deadline = options.deadline
    result.timings.update(read=read_done - clock, validate=validate_done - read_done,
                          consolidate=perf_counter() - validate_done)
    return result


def process_inbox(inbox: Path, options: Options) -> Consolidation:
    form = load_form(options.form)
    registry = load_registry(options.registry)  # a broken registry stops the run before any file is read
    return process(scan(inbox), options, registry, form)


def new_run_name(outbox: Path, now: datetime | None = None) -> str:
    stamp = (now or datetime.now()).strftime("%Y-%m-%d_%H%M%S")
    name, counter = stamp, 1
    while (outbox / name).exists():
        counter += 1
        name = f"{stamp}_{counter}"
    return name


def write_run(consolidation: Consolidation, outbox: Path, started: datetime | None = None,
              extra: Callable[[Path, str], None] | None = None,
              meanwhile: Callable[[], None] | None = None) -> Path:
    """Write the run folder under a temporary name, then rename it into place in one step.

    `extra(staging_folder, run_name)` adds files (the mail) before the folder becomes visible;
    `meanwhile()` is work of the caller's done while the workbook is being written.
    """
    from pipeline.report import write_outputs

    outbox.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(outbox)
    name = new_run_name(outbox, started)
    staging = outbox / f".{name}.partial-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    clock = perf_counter()
    try:
        write_outputs(consolidation, staging, run_name=name, meanwhile=meanwhile)
        if extra is not None:
            extra(staging, name)
        final = outbox / name
        consolidation.timings["write"] = perf_counter() - clock
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_dir(outbox)
    return final


def remove_stale_staging(outbox: Path) -> list[Path]:
    """Half-written run folders left by a run that was killed; their owner is gone."""
    removed = []
    for candidate in outbox.glob(".*.partial-*"):
        pid = candidate.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)) and candidate.is_dir():
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

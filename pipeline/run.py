"""The whole pass over an inbox: assess every file, consolidate, and write a run folder.

`process` is the pass, as straight-line steps: read and normalize every file in isolated workers
(parallel.map over normalize.read_and_prepare), identify each file's unit, validate every submission
in one call, build one immutable FileOutcome per file, consolidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from time import perf_counter
from datetime import date, datetime, time
from pathlib import Path
from collections.abc import Callable, Sequence

from pipeline.parallel import pool as parallel
from pipeline.stages.consolidate import Consolidation, FileOutcome, RunSettings, consolidate
from pipeline.core.form import DEFAULT_FORM, FormDefinition, load_form
from pipeline.stages.identify import UnitFinding, UnitMatcher, find_unit
from pipeline.stages.intake import REPORT_EXTENSIONS, InboxFile, scan
from pipeline.read.isolated import READER_MODULES, IsolationSettings
from pipeline.core.issues import Issue, clip_issues, make_issue
from pipeline.stages.normalize import Submission, failed_submission, read_and_prepare
from pipeline.core.registry import Registry, load_registry

Progress = Callable[[int, int], None]  # (files read, files to read)


@dataclass
class Options:
    registry: Path = Path("templates/don_vi.xlsx")
    form: Path = DEFAULT_FORM
    isolation: IsolationSettings = field(default_factory=IsolationSettings)
    isolate: bool = True
    settings: RunSettings = field(default_factory=RunSettings)


def process(files: list[InboxFile], options: Options, registry: Registry | None = None,
            form: FormDefinition | None = None, progress: Progress | None = None) -> Consolidation:
    """Read, identify, normalize, validate and consolidate `files`.

    What waits for no file (loading `options.registry` unless `registry` is given, the unit matcher,
    the validation stack) is done in a thread while the workers read: measured 0.15–0.2 s less at
    3,000 files. A RegistryError stops the run once the files are read, before any is identified.
    """
    form = form or load_form(options.form)
    clock = perf_counter()
    readable = [f for f in files if not f.junk_reason]
    with parallel.Pool(read_and_prepare, options.isolation, args=(form,), preload=READER_MODULES,
                       isolated=options.isolate) as readers:
        # Started once the workers are forked (see parallel.in_background).
        readying = parallel.in_background(_ready_checks, registry if registry is not None else options.registry, form)
        read = readers.map([str(f.path) for f in readable], progress)
    read_done = perf_counter()
    registry, matcher = readying.result()
    per_file = [failed_submission(r) if isinstance(r, parallel.Failed) else r for r in read]
    # One entry per submission: a file's own, or one per member of a container and per copy of the form.
    entries, submissions = submission_entries(readable, per_file)
    loaded = perf_counter()
    findings = [find_unit(s, e.name, matcher, registry, form.edition)
                for e, s in zip(entries, submissions, strict=True)]
    identify_done = perf_counter()
    checks = validate_all(entries, submissions, findings, registry, form)
    assessed = [assess(*parts, options.settings.deadline)
                for parts in zip(entries, submissions, findings, checks, strict=True)]
    assessed = mark_non_reports(assessed)
    by_file: dict[str, list[FileOutcome]] = {}
    for outcome in assessed:
        by_file.setdefault(str(outcome.path), []).append(outcome)
    everything = [o for f in files for o in ([ignored(f)] if f.junk_reason else by_file.pop(str(f.path), []))]
    validate_done = perf_counter()
    result = consolidate(everything, registry, form, options.settings)
    return replace(result, timings={"read": read_done - clock, "wait for registry": loaded - read_done,
                                    "identify": identify_done - loaded, "validate": validate_done - identify_done,
                                    "consolidate": perf_counter() - validate_done})


def submission_entries(files: Sequence[InboxFile], per_file: Sequence[Sequence[Submission]]
                       ) -> tuple[list[InboxFile], list[Submission]]:
    """Each submission with the inbox entry it is shown as: the file itself, or `file/member` for a
    container's member (its own size, and the Date of the mail it came in as its time of receipt)."""
    entries: list[InboxFile] = []
    submissions: list[Submission] = []
    for entry, found in zip(files, per_file, strict=True):
        for submission in found:
            if submission.part:
                entries.append(replace(entry, name=f"{entry.name}/{submission.part}",
                                       size=submission.size if submission.size >= 0 else entry.size,
                                       mtime=submission.received if submission.received is not None else entry.mtime))
            else:
                entries.append(entry)
            submissions.append(submission)
    return entries, submissions


_NOT_A_FORM = {"file_text": "văn bản", "file_html": "trang web", "file_not_spreadsheet": "không rõ định dạng"}


def mark_non_reports(outcomes: list[FileOutcome]) -> list[FileOutcome]:
    """Scans and photos (PDF, images) never count as a report: each is recorded against the unit it names
    (or the unit of the report it came with, in one mail or archive) as that unit's signed copy, or
    listed as not a report when it names none. So is a note or a web page that does not claim to be a
    report by its name; one that does (a .xlsx that is really text) stays rejected, with its message."""
    units_by_file: dict[str, set[str]] = {}
    for outcome in outcomes:
        if outcome.unit and outcome.format not in ("pdf", "image"):
            units_by_file.setdefault(str(outcome.path), set()).add(outcome.unit)
    kept = []
    for outcome in outcomes:
        codes = {i.code for i in outcome.issues if i.severity == "error"}
        other = next(iter(codes & _NOT_A_FORM.keys()), "") if len(codes) == 1 else ""
        if outcome.format not in ("pdf", "image") and not (
                other and Path(outcome.name).suffix.lower() not in REPORT_EXTENSIONS):
            kept.append(outcome)
            continue
        kind = "PDF" if outcome.format == "pdf" else "ảnh" if outcome.format == "image" else _NOT_A_FORM[other]
        unit = outcome.unit
        siblings = units_by_file.get(str(outcome.path), set())
        if not unit and len(siblings) == 1 and outcome.format in ("pdf", "image"):
            unit = next(iter(siblings))
        scan = outcome.format in ("pdf", "image")
        issue = make_issue("signed_copy", kind=kind) if unit and scan else make_issue("not_a_report", kind=kind)
        kept.append(replace(outcome, status="ignored", unit=unit if scan else "", issues=[issue]))
    return kept


def _ready_checks(registry: Registry | Path, form: FormDefinition) -> tuple[Registry, UnitMatcher]:
    """The registry (loaded from its path, unless given) and its unit matcher; and the validation stack
    loaded (pandas, pandera: ~0.3 s, and what they load on first use)."""
    if not isinstance(registry, Registry):
        registry = load_registry(registry)
    matcher = UnitMatcher(registry)
    try:
        # deferred: pandas and pandera (~0.4–0.9 s) load here, in the background, while the files are read
        from pipeline.stages.validate import warm_up

        warm_up(form)
    except Exception:  # the import is repeated, and reported, where validation really needs it
        pass
    return registry, matcher


def validate_all(files: Sequence[InboxFile], submissions: Sequence[Submission], findings: Sequence[UnitFinding],
                 registry: Registry, form: FormDefinition) -> list[tuple[Issue, ...]]:
    """The rules' issues of each submission (none where no form was found), from one validation of all."""
    # deferred: pandas and pandera load only when something is validated
    from pipeline.stages.validate import SubmissionValues, validate

    located: list[int] = []
    values: list[SubmissionValues] = []
    for i, submission in enumerate(submissions):
        numbers, unit = submission.numbers, findings[i].unit
        if numbers is None:
            continue  # no form found: nothing to check
        located.append(i)
        allocation = {y: registry.quotas[(unit, y)] for y in form.years if (unit, y) in registry.quotas}
        values.append(SubmissionValues(file=files[i].name, unit=unit, sheet=submission.sheet,
                                       values=numbers.values, cells=numbers.cells, total=numbers.total,
                                       total_cells=numbers.total_cells, allocation=allocation))
    checks: list[tuple[Issue, ...]] = [()] * len(submissions)
    for i, found in zip(located, validate(values, form), strict=True):
        checks[i] = tuple(found)
    return checks


def assess(entry: InboxFile, submission: Submission, finding: UnitFinding, checks: Sequence[Issue],
           deadline: date | None = None) -> FileOutcome:
    """Everything learnt about one file that was read, in one record: issues in sheet order."""
    numbers = submission.numbers
    issues = clip_issues(sorted((*submission.issues, *finding.issues, *(numbers.issues if numbers else ()),
                                 *checks), key=_issue_order))
    sent_back = any(i.severity != "info" for i in issues)  # only files sent back with remarks keep their sheet
    late = late_issue(entry.mtime, deadline, finding.unit, entry.name) if deadline is not None else None
    if late is not None:
        issues.append(late)
    return FileOutcome(name=entry.name, path=entry.path, size=entry.size, mtime=entry.mtime,
                       sha256=submission.sha256, format=submission.format, sheet=submission.sheet,
                       sheets=submission.sheets, unit=finding.unit, unit_source=finding.source,
                       values=numbers.values if numbers else {}, cells=numbers.cells if numbers else {},
                       total=numbers.total if numbers else {}, total_cells=numbers.total_cells if numbers else {},
                       issues=issues, grid=(submission.grid or []) if sent_back else [])


def ignored(entry: InboxFile) -> FileOutcome:
    return FileOutcome(name=entry.name, path=entry.path, size=entry.size, mtime=entry.mtime, status="ignored",
                       issues=[make_issue("file_ignored", reason=entry.junk_reason)])


def _issue_order(issue) -> tuple:
    digits = "".join(ch for ch in issue.cell if ch.isdigit())
    letters = "".join(ch for ch in issue.cell if ch.isalpha())
    severity = {"error": 0, "warning": 1, "info": 2}[issue.severity]
    return (int(digits) if digits else 0, letters.rjust(3), severity, issue.code)


def late_issue(mtime: float, deadline: date, unit: str, name: str) -> Issue | None:
    """A warning for a file received after the deadline's last second."""
    if mtime <= datetime.combine(deadline, time.max).timestamp():
        return None
    received = datetime.fromtimestamp(mtime)
    return make_issue("late_submission", received=received.strftime("%d/%m/%Y %H:%M"),
                      deadline=deadline.strftime("%d/%m/%Y"), unit=unit, file=name)


def process_inbox(inbox: Path, options: Options) -> Consolidation:
    form = load_form(options.form)
    registry = load_registry(options.registry)  # a broken registry stops the run before any file is read
    return process(scan(inbox), options, registry, form)

"""Newest submission per unit, statuses, province totals and quota achievement."""

from __future__ import annotations

from functools import cached_property
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path

from pipeline.core.form import FormDefinition
from pipeline.core.issues import Issue, make_issue
from pipeline.core.registry import Registry

STATUSES = ("accepted", "rejected", "superseded", "ignored", "missing")


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """Everything the pipeline learnt about one inbox file. Immutable: each stage that learns more makes a
    new one (dataclasses.replace); `issues` is never changed in place either."""

    name: str
    path: Path
    size: int
    mtime: float
    sha256: str = ""
    format: str = ""
    sheet: str = ""
    sheets: tuple[str, ...] = ()
    unit: str = ""
    unit_source: str = ""  # "token" | "unit_line" | "file_name"
    status: str = ""
    values: dict[tuple[int, str], int | None] = field(default_factory=dict)
    cells: dict[tuple[int, str], str] = field(default_factory=dict)
    total: dict[str, int | None] = field(default_factory=dict)
    total_cells: dict[str, str] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    grid: list[list] = field(default_factory=list)  # the submitted sheet as received (files with issues only)

    @property
    def errors(self) -> int:
        return sum(1 for i in self.issues if i.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for i in self.issues if i.severity == "warning")

    @property
    def has_errors(self) -> bool:
        return self.errors > 0


@dataclass(slots=True)
class QuotaLine:
    unit: str
    year: int
    allocated: int | None
    reported: int | None
    admitted: int | None

    @property
    def achievement(self) -> float | None:
        if self.allocated in (None, 0) or self.admitted is None:
            return None
        return self.admitted / self.allocated


@dataclass(frozen=True, slots=True)
class ProvinceQuota:
    """One year's province-wide quota achievement, admitted and allocated over the same units.

    The ratio counts the units that are accepted *and* have an allocation for the year: a unit
    without an accepted report adds nothing to the admitted side, so its quota stays out of the
    allocated side too. The quota allocated to every unit is kept for display only.
    """

    year: int
    covered: tuple[str, ...]  # accepted units with an allocation for the year: the units the ratio counts
    not_covered: tuple[str, ...]  # units with an allocation whose report is missing or was rejected
    without_quota: tuple[str, ...]  # accepted units without an allocation: their admissions are left out
    allocated: int  # quota allocated to the covered units
    reported: int  # quota the covered units reported
    admitted: int  # admitted by the covered units
    allocated_all: int  # quota allocated to every unit with an allocation (never divided by anything)

    @property
    def units_allocated(self) -> int:
        """Units with an allocation for the year, covered or not."""
        return len(self.covered) + len(self.not_covered)

    @property
    def ratio(self) -> float | None:
        return self.admitted / self.allocated if self.covered and self.allocated else None

    @property
    def basis(self) -> str:
        """Which units the ratio covers, to follow the ratio itself: "tính trên 9 đơn vị hợp lệ có chỉ tiêu (…)"."""
        if not self.units_allocated:
            text = "chưa có đơn vị nào được giao chỉ tiêu"
        elif not self.covered:
            text = f"chưa tính được: cả {len(self.not_covered)} đơn vị có chỉ tiêu đều chưa nộp hoặc bị trả lại"
        elif not self.not_covered:
            text = f"tính trên {len(self.covered)} đơn vị hợp lệ có chỉ tiêu (đủ tất cả đơn vị được giao chỉ tiêu)"
        else:
            text = (f"tính trên {len(self.covered)} đơn vị hợp lệ có chỉ tiêu "
                    f"(chưa tính {len(self.not_covered)} đơn vị chưa nộp hoặc bị trả lại)")
        if self.without_quota and self.units_allocated:
            text += f"; không tính số kết nạp của {len(self.without_quota)} đơn vị hợp lệ chưa được giao chỉ tiêu"
        return text

    @property
    def coverage(self) -> str:
        """The same as a sentence of its own, without its full stop: "Tỉ lệ tính trên 9 đơn vị …"."""
        basis = self.basis
        return f"Tỉ lệ {basis}" if self.units_allocated else basis[:1].upper() + basis[1:]

    def allocated_all_label(self, amount: str = "") -> str:
        """What `allocated_all` is, for a reader who sees it next to the ratio; `amount` is the number as shown."""
        shown = f": {amount}" if amount else ""
        return f"Chỉ tiêu giao cả {self.units_allocated} đơn vị{shown} (không dùng để tính tỉ lệ)"


@dataclass(frozen=True, slots=True)
class RunSettings:
    """What a run is told rather than what it finds: printed on its outputs, or deciding what is late."""

    province: str = "Bình Dương"
    created: datetime = field(default_factory=datetime.now)
    deadline: date | None = None
    unit_sheet_limit: int = 60
    feedback_limit: int = 60


@dataclass(frozen=True)  # no slots: one per run, and assigning a property raises FrozenInstanceError too
class Consolidation:
    """The result of a run, made once by `consolidate` (the nightly job adds `changes`, the run its
    `timings`, each through dataclasses.replace)."""

    form: FormDefinition
    registry: Registry
    files: list[FileOutcome]
    submissions: dict[str, FileOutcome]  # unit code → its newest file, accepted or not
    missing: list[str]
    totals: dict[tuple[int, str], int]
    issues: list[Issue]  # every issue of the run, files first, then missing units
    settings: RunSettings = field(default_factory=RunSettings)
    changes: list = field(default_factory=list)  # pipeline.stages.changes.Change, given by the nightly run
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage: read, validate, consolidate, write

    @property
    def province(self) -> str:
        return self.settings.province

    @property
    def created(self) -> datetime:
        return self.settings.created

    @property
    def deadline(self) -> date | None:
        return self.settings.deadline

    @property
    def unit_sheet_limit(self) -> int:
        return self.settings.unit_sheet_limit

    @property
    def feedback_limit(self) -> int:
        return self.settings.feedback_limit

    def late_units(self) -> list[str]:
        return [code for code, o in self.submissions.items() if any(i.code == "late_submission" for i in o.issues)]

    def past_deadline(self, now: datetime | None = None) -> bool:
        if self.deadline is None:
            return False
        return (now or datetime.now()).date() > self.deadline

    def accepted(self) -> list[FileOutcome]:
        return [f for f in self.submissions.values() if f.status == "accepted"]

    @cached_property
    def scan_only(self) -> frozenset[str]:
        """Units with no report but a scan or photo (their signed copy): sent something, not "missing".
        Worked out once: the status sheet asks for every missing unit."""
        missing = set(self.missing)
        return frozenset(o.unit for o in self.files if o.unit and o.status == "ignored" and o.unit in missing)

    def unit_status(self, code: str) -> str:
        if code in self.submissions:
            return self.submissions[code].status
        return "missing"

    def quota_lines(self) -> list[QuotaLine]:
        admitted_keys = admitted_metrics(self.form)
        quota_key = self.form.roles.quota
        lines = []
        for unit in self.registry.units:
            submission = self.submissions.get(unit.code)
            accepted = submission if submission is not None and submission.status == "accepted" else None
            for year in self.form.years:
                reported = accepted.values.get((year, quota_key)) if accepted is not None else None
                admitted = (sum(accepted.values.get((year, k)) or 0 for k in admitted_keys)
                            if accepted is not None else None)
                allocated = self.registry.quotas.get((unit.code, year))
                lines.append(QuotaLine(unit.code, year, allocated, reported, admitted))
        return lines

    def province_quotas(self, lines: list[QuotaLine] | None = None) -> dict[int, ProvinceQuota]:
        """Year → the province's quota achievement; the one place a province-wide ratio is computed."""
        if lines is None:
            lines = self.quota_lines()
        registered = self.registry.codes
        unregistered = tuple(o.unit for o in self.accepted() if o.unit not in registered)
        result = {}
        for year in self.form.years:
            year_lines = [line for line in lines if line.year == year]
            covered = [line for line in year_lines if line.allocated is not None and line.admitted is not None]
            result[year] = ProvinceQuota(
                year=year,
                covered=tuple(line.unit for line in covered),
                not_covered=tuple(line.unit for line in year_lines
                                  if line.allocated is not None and line.admitted is None),
                without_quota=tuple(line.unit for line in year_lines
                                    if line.allocated is None and line.admitted is not None) + unregistered,
                allocated=sum(line.allocated or 0 for line in covered),
                reported=sum(line.reported or 0 for line in covered),
                admitted=sum(line.admitted or 0 for line in covered),
                allocated_all=sum(line.allocated or 0 for line in year_lines),
            )
        return result


def admitted_metrics(form: FormDefinition) -> tuple[str, ...]:
    """The metrics that count people admitted to the Party: the form's `admitted` role."""
    return form.admitted_metrics


def consolidate(files: list[FileOutcome], registry: Registry, form: FormDefinition,
                settings: RunSettings | None = None) -> Consolidation:
    """Assign statuses: newest file per unit (by mtime, ties by name) counts; others are superseded.

    Pure: `files` are left as they are; the result holds new outcomes, with their statuses, the
    superseded notes, and every issue stamped with its unit and file.
    """
    statuses = ["ignored" if o.status == "ignored" else "rejected" if o.has_errors else "accepted" for o in files]
    by_unit: dict[str, list[int]] = {}
    for index, outcome in enumerate(files):
        if statuses[index] != "ignored" and outcome.unit:
            by_unit.setdefault(outcome.unit, []).append(index)
    newest: dict[str, int] = {}  # unit code → index of its newest file
    notes: dict[int, Issue] = {}  # index of a superseded file → the issue saying so
    extra: dict[int, Issue] = {}  # index of a kept copy → the warning that its workbook names the unit twice
    for code, candidates in by_unit.items():
        # Sorting is stable: copies in one workbook (same time, same name) keep their sheet order, the last wins.
        candidates.sort(key=lambda i: (files[i].mtime, files[i].name))
        kept = candidates[-1]
        newest[code] = kept
        for older in candidates[:-1]:
            statuses[older] = "superseded"
            if files[older].name == files[kept].name:
                notes[older] = make_issue("sheet_superseded", newer=files[kept].sheet, unit=code,
                                          file=files[older].name, sheet=files[older].sheet)
                extra[kept] = make_issue("unit_twice_in_workbook", older=files[older].sheet,
                                         sheet=files[kept].sheet, unit=code, file=files[kept].name)
            else:
                notes[older] = make_issue("file_superseded", newer=files[kept].name, unit=code,
                                          file=files[older].name)
    outcomes: list[FileOutcome] = []
    issues: list[Issue] = []
    for index, outcome in enumerate(files):
        unit, name = outcome.unit, outcome.name
        stamped = [replace(i, unit=unit, file=name) for i in outcome.issues]
        if index in extra:
            stamped.append(extra[index])
        if index in notes:
            stamped.append(replace(notes[index], unit=unit, file=name))
        issues.extend(stamped)
        outcomes.append(replace(outcome, status=statuses[index], issues=stamped))
    submissions = {code: outcomes[index] for code, index in newest.items()}
    missing = [u.code for u in registry.units if u.code not in submissions]
    totals: dict[tuple[int, str], int] = {(y, m): 0 for y in form.years for m in form.metric_keys}
    for outcome in submissions.values():
        if outcome.status != "accepted":
            continue
        for key in totals:
            totals[key] += outcome.values.get(key) or 0
    issues.extend(make_issue("unit_missing", unit=code) for code in missing)
    ordered = {u.code: submissions[u.code] for u in registry.units if u.code in submissions}
    ordered.update({code: f for code, f in submissions.items() if code not in ordered})
    return Consolidation(form=form, registry=registry, files=outcomes, submissions=ordered, missing=missing,
                         totals=totals, issues=issues, settings=settings or RunSettings())

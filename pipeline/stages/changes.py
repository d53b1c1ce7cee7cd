"""What changed since the last completed run: files, values, issues, verdicts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from pipeline.stages.consolidate import Consolidation
from pipeline.core.formatting import format_number

# Kinds, in the order the board reads them.
KINDS = {
    "edition": "Mẫu biểu mới",
    "submission": "Bài nộp mới hoặc thay thế",
    "withdrawn": "Bài nộp không còn trong hộp thư",
    "accepted": "Đơn vị chuyển sang hợp lệ",
    "no_longer_accepted": "Đơn vị không còn hợp lệ",
    "value": "Số liệu thay đổi",
    "resolved": "Sai lệch đã được sửa",
    "new_issue": "Sai lệch mới",
}


@dataclass(frozen=True)
class Snapshot:
    """What a completed run found, as the next run compares against it."""

    values: dict[tuple[str, int, str], int]
    units: dict[str, tuple[str, str, str]]  # unit → (status, file, sha256)
    issues: set[tuple[str, str, str, str, str]]  # (unit, code, cell, severity, message)
    edition: str = ""  # the form's edition; "" for snapshots saved before editions were recorded


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    unit: str
    text: str  # one Vietnamese line, ready for the workbook and the email
    year: int | None = None
    metric: str = ""
    old: str = ""
    new: str = ""


def snapshot_of(consolidation: Consolidation) -> Snapshot:
    # A None value is an unreadable cell, which is an error: accepted files have none.
    values = {(o.unit, year, metric): int(cast(int, o.values[(year, metric)]))
              for o in consolidation.accepted() for year in consolidation.form.years
              for metric in consolidation.form.metric_keys}
    units = {code: (consolidation.unit_status(code), o.name, o.sha256) for code, o in consolidation.submissions.items()}
    issues: set[tuple[str, str, str, str, str]] = {
        (o.unit, i.code, i.cell, i.severity, i.message) for o in consolidation.submissions.values()
        for i in o.issues if i.severity in ("error", "warning")}
    return Snapshot(values, units, issues, edition=consolidation.form.edition)


def diff(previous: Snapshot | None, consolidation: Consolidation, current: Snapshot | None = None) -> list[Change]:
    """Changes from `previous` to `current` (default: the consolidation's own snapshot); with no earlier
    run, one line saying what this first run received; with an earlier run of another edition of the form,
    one line saying so (its metrics and years are not those of this edition, so nothing is compared).

    A snapshot saved before editions were recorded (edition "") counts as the same edition: until then
    only one edition existed, and its values are compared metric by metric as before."""
    current = current or snapshot_of(consolidation)
    if previous is None:
        # Every unit would be "new": one line says it without listing thousands of rows at national scale.
        accepted = sum(1 for status, _, _ in current.units.values() if status == "accepted")
        total = len(consolidation.registry.units)
        return [Change("submission", "", f"Lần tổng hợp đầu tiên: đã nhận bài nộp của {len(current.units)}/{total} "
                                         f"đơn vị, {accepted} đơn vị hợp lệ.")]
    edition = current.edition or consolidation.form.edition
    if previous.edition and previous.edition != edition:
        return [Change("edition", "", f"Lần tổng hợp này dùng mẫu biểu mới \"{edition}\" (lần trước dùng mẫu "
                                      f"\"{previous.edition}\"); số liệu của hai mẫu biểu không so sánh với nhau "
                                      "nên không liệt kê thay đổi.", old=previous.edition, new=edition)]
    names = {u.code: u.name for u in consolidation.registry.units}
    labels = {m.key: m.label for m in consolidation.form.metrics}
    changes: list[Change] = []
    for code, (status, file, sha) in current.units.items():
        before = previous.units.get(code)
        if before is None or before[2] != sha:
            verb = "gửi bài mới" if before is None else "gửi bản thay thế"
            changes.append(Change("submission", code, f"{names.get(code, code)}: {verb} \"{file}\"."))
        if status == "accepted" and (before is None or before[0] != "accepted"):
            changes.append(Change("accepted", code, f"{names.get(code, code)}: báo cáo đã hợp lệ."))
        elif status != "accepted" and before is not None and before[0] == "accepted":
            changes.append(Change("no_longer_accepted", code, f"{names.get(code, code)}: báo cáo không còn hợp lệ; "
                                                              f"số liệu của đơn vị không còn được cộng vào tổng."))
    for code, (status, file, _) in sorted(previous.units.items()):
        if code not in current.units:
            # Deleted, moved, or in a folder that can no longer be read: the unit is missing again and
            # its numbers have left the totals, which the board must hear about.
            tail = " Số liệu của đơn vị không còn được cộng vào tổng." if status == "accepted" else ""
            changes.append(Change("withdrawn", code, f"{names.get(code, code)}: bài nộp \"{file}\" không còn trong hộp "
                                                     f"thư; đơn vị chuyển sang chưa nộp.{tail}"))
    for key in sorted(set(current.values) & set(previous.values)):
        old, new = previous.values[key], current.values[key]
        if old != new:
            unit, year, metric = key
            changes.append(Change("value", unit, f"{names.get(unit, unit)}, năm {year}, {labels.get(metric, metric)}: "
                                  f"{format_number(old)} → {format_number(new)}.", year, metric,
                                  format_number(old), format_number(new)))
    previous_keys = {(u, c, cell): msg for u, c, cell, _, msg in previous.issues}
    current_keys = {(u, c, cell): msg for u, c, cell, _, msg in current.issues}
    for (unit, code, cell), message in sorted(previous_keys.items()):
        if (unit, code, cell) not in current_keys and unit in current.units:
            where = f" (ô {cell})" if cell else ""
            changes.append(Change("resolved", unit, f"{names.get(unit, unit)}{where}: đã sửa — {message}"))
    if previous.units:
        for (unit, code, cell), message in sorted(current_keys.items()):
            if (unit, code, cell) not in previous_keys:
                where = f" (ô {cell})" if cell else ""
                changes.append(Change("new_issue", unit, f"{names.get(unit, unit)}{where}: {message}"))
    order = list(KINDS)
    changes.sort(key=lambda c: order.index(c.kind))
    return changes

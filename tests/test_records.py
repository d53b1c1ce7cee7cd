"""The records that flow through the stages are immutable, and consolidate() changes none of its inputs."""

from __future__ import annotations

import copy
import dataclasses
from datetime import date, datetime
from pathlib import Path

import pytest

from pipeline.stages.consolidate import Consolidation, FileOutcome, RunSettings, consolidate
from pipeline.core.issues import Issue
from pipeline.stages.normalize import Normalized, Submission


def _outcome(name: str, unit: str, mtime: float, *, error: bool = False, status: str = "") -> FileOutcome:
    issues = [Issue("value_negative", "error", "Số âm", sheet="BM", cell="C9", found="-1")] if error else []
    return FileOutcome(name=name, path=Path(name), size=1, mtime=mtime, unit=unit, unit_source="unit_line",
                       status=status, values={(2021, "members_total"): 10}, issues=issues)


@pytest.fixture
def outcomes() -> list[FileOutcome]:
    return [_outcome("old.xlsx", "DT", 1.0), _outcome("new.xlsx", "DT", 2.0, error=True),
            _outcome("pg.xlsx", "PG", 1.0), _outcome("~$tmp.xlsx", "", 1.0, status="ignored")]


def test_file_outcome_is_frozen(outcomes):
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcomes[0].status = "accepted"
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcomes[0].issues = []


def test_submission_and_normalized_are_frozen():
    numbers = Normalized({}, {}, {}, {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        numbers.values = {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        Submission("", "rejected").format = "xlsx"


def test_consolidation_is_frozen_and_its_settings_read_through(outcomes, registry, form):
    settings = RunSettings(province="Tây Ninh", created=datetime(2024, 2, 1), deadline=date(2024, 2, 10),
                           unit_sheet_limit=5, feedback_limit=7)
    result = consolidate(outcomes, registry, form, settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.province = "x"
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.changes = []
    assert (result.province, result.created, result.deadline, result.unit_sheet_limit, result.feedback_limit) == \
        ("Tây Ninh", datetime(2024, 2, 1), date(2024, 2, 10), 5, 7)
    assert dataclasses.replace(result, changes=["c"]).changes == ["c"] and result.changes == []
    assert isinstance(result, Consolidation)


def test_consolidate_does_not_change_its_inputs(outcomes, registry, form):
    before = copy.deepcopy(outcomes)
    issue_lists = [o.issues for o in outcomes]
    result = consolidate(outcomes, registry, form)
    assert outcomes == before
    assert all(o.issues is issues for o, issues in zip(outcomes, issue_lists, strict=True))
    assert [o.status for o in outcomes] == ["", "", "", "ignored"]
    # The result's records are new ones, with what consolidation decided.
    assert [(o.name, o.status) for o in result.files] == [
        ("old.xlsx", "superseded"), ("new.xlsx", "rejected"), ("pg.xlsx", "accepted"), ("~$tmp.xlsx", "ignored")]
    assert [i.code for i in result.files[0].issues] == ["file_superseded"]
    assert all(i.unit == o.unit and i.file == o.name for o in result.files for i in o.issues)
    assert result.submissions["DT"] is result.files[1] and result.submissions["PG"] is result.files[2]
    assert not any(o.issues for o in outcomes if o.name == "old.xlsx")

"""The bundled sample inbox, judged file by file against its answer key."""

from __future__ import annotations

from datetime import datetime

import pytest
from conftest import SAMPLE_EXPECTED, read_csv, run_sample_inbox, sample_submissions

EXPECTED = SAMPLE_EXPECTED
# (file, sheet) → unit, status, issues: one per row of submissions.csv (members as "file/member").
SUBMISSIONS = sample_submissions(EXPECTED)

# The answer key names issues in plain words; these are the codes the pipeline gives them.
KIND_CODES = {
    "admitted": "admitted_exceeds_outstanding",
    "outstanding": "outstanding_exceeds_members",
    "text": "value_not_number",
    "quota": "quota_mismatch",
    "negative": "value_negative",
    "missing_year": "year_missing",
    "unknown_unit": "unit_unknown",
    "total": "total_row_mismatch",
    "repeated_year": "year_duplicate",
    "unit_from_name": "unit_from_file_name",
    "fraction": "value_fraction",
    "jump": "members_change_large",
    "blank": "value_blank",
    "not_a_report": "not_a_report",
    "legacy_font": "legacy_font",
    "from_sender": "unit_from_sender",
    "signed_copy": "signed_copy",
    "name_conflict": "unit_name_conflict",
}
SEVERITY_OF_KIND = {"unit_from_name": "info"}


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    return run_sample_inbox(tmp_path_factory.mktemp("sample"))


def submission_rows(folder) -> dict[tuple[str, str | None], dict[str, str]]:
    """submissions.csv by the answer key's (file, sheet): the sheet only where the key names it."""
    rows: dict[tuple[str, str | None], dict[str, str]] = {}
    for row in read_csv(folder / "submissions.csv"):
        if row["file"]:
            key = (row["file"], row["sheet"]) if (row["file"], row["sheet"]) in SUBMISSIONS else (row["file"], None)
            assert key not in rows, key
            rows[key] = row
    return rows


def test_every_file_has_its_expected_unit_and_status(sample_run):
    rows = submission_rows(sample_run)
    assert set(rows) == set(SUBMISSIONS)
    for key, entry in SUBMISSIONS.items():
        assert (rows[key]["unit_code"] or None, rows[key]["status"]) == (entry["unit"], entry["status"]), key
        if "received" in entry:  # a mail's attachment: received at the mail's Date
            assert datetime.fromisoformat(rows[key]["modified_at"]) == datetime.fromisoformat(entry["received"]), key


def test_missing_units(sample_run):
    missing = [r["unit_code"] for r in read_csv(sample_run / "submissions.csv") if r["status"] == "missing"]
    assert sorted(missing) == sorted(EXPECTED["missing_units"])


def test_every_expected_issue_at_its_cell_and_nothing_else_of_note(sample_run):
    issues = [i for i in read_csv(sample_run / "issues.csv") if i["code"] not in ("file_ignored", "file_superseded")]
    sheets: dict[str, set[str]] = {}
    for name, sheet in SUBMISSIONS:
        if sheet is not None:
            sheets.setdefault(name, set()).add(sheet)
    for (name, sheet), entry in SUBMISSIONS.items():
        found = {(i["code"], i["severity"], i["cell"]) for i in issues
                 if i["file"] == name and (sheet is None or i["sheet"] == sheet)}
        expected = {(KIND_CODES[i["kind"]], SEVERITY_OF_KIND.get(i["kind"], i["severity"]), i["cell"] or "")
                    for i in entry["issues"]}
        assert found == expected, (name, sheet)
    # A file judged sheet by sheet has no issue of note outside those sheets.
    assert [i for i in issues if i["file"] in sheets and i["sheet"] not in sheets[i["file"]]] == []


def test_totals_are_the_sum_of_accepted_values(sample_run):
    values = read_csv(sample_run / "values.csv")
    accepted = {(name, sheet) for (name, sheet), e in SUBMISSIONS.items() if e["status"] == "accepted"}
    assert {(v["file"], v["sheet"] if (v["file"], v["sheet"]) in SUBMISSIONS else None) for v in values} == accepted
    for total in read_csv(sample_run / "totals.csv"):
        assert int(total["value"]) == sum(int(v["value"]) for v in values
                                          if (v["year"], v["metric"]) == (total["year"], total["metric"]))

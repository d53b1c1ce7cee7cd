"""The bundled sample inbox, judged file by file against its answer key."""

from __future__ import annotations


import pytest
from conftest import SAMPLE_EXPECTED, read_csv, run_sample_inbox

EXPECTED = SAMPLE_EXPECTED

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
}
SEVERITY_OF_KIND = {"unit_from_name": "info"}


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    return run_sample_inbox(tmp_path_factory.mktemp("sample"))


def test_every_file_has_its_expected_unit_and_status(sample_run):
    rows = {r["file"]: r for r in read_csv(sample_run / "submissions.csv") if r["file"]}
    assert set(rows) == set(EXPECTED["files"])
    for name, entry in EXPECTED["files"].items():
        assert (rows[name]["unit_code"] or None, rows[name]["status"]) == (entry["unit"], entry["status"]), name


def test_missing_units(sample_run):
    missing = [r["unit_code"] for r in read_csv(sample_run / "submissions.csv") if r["status"] == "missing"]
    assert sorted(missing) == sorted(EXPECTED["missing_units"])


def test_every_expected_issue_at_its_cell_and_nothing_else_of_note(sample_run):
    issues = read_csv(sample_run / "issues.csv")
    for name, entry in EXPECTED["files"].items():
        found = {(i["code"], i["severity"], i["cell"]) for i in issues if i["file"] == name
                 and i["code"] not in ("file_ignored", "file_superseded")}
        expected = {(KIND_CODES[i["kind"]], SEVERITY_OF_KIND.get(i["kind"], i["severity"]), i["cell"] or "")
                    for i in entry["issues"]}
        assert found == expected, name


def test_totals_are_the_sum_of_accepted_values(sample_run):
    values = read_csv(sample_run / "values.csv")
    accepted = {name for name, e in EXPECTED["files"].items() if e["status"] == "accepted"}
    assert {v["file"] for v in values} == accepted
    for total in read_csv(sample_run / "totals.csv"):
        assert int(total["value"]) == sum(int(v["value"]) for v in values
                                          if (v["year"], v["metric"]) == (total["year"], total["metric"]))

"""The naive script: what one writes in an afternoon with pandas and pandera.

    python benchmarks/naive.py INBOX OUT

Per file: pandas.read_excel (openpyxl for .xlsx, pandas' default reader for .xls — xlrd; calamine for
.ods because odfpy is not installed), every sheet read and the last one with year rows taken (pandas
does not say which sheets are hidden), a pandera schema validated on that file's frame; then all
frames are concatenated and written with DataFrame.to_excel, failures on a second sheet.
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

# The floor's own year-label reader: both baselines must read the same rows.
from floor import year_of  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

YEARS = (2021, 2022, 2023)
METRICS = ("members_total", "outstanding_members", "quota_assigned", "admitted_pupils", "admitted_students",
           "admitted_workers_state", "admitted_workers_private")
ADMITTED = METRICS[3:]
EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".ods")
_CODE = re.compile(r"U\d{5}")

SCHEMA = pa.DataFrameSchema(
    {
        "unit_code": pa.Column(str),
        "file": pa.Column(str),
        "year": pa.Column(int, pa.Check.isin(YEARS)),
        **{metric: pa.Column("Int64", pa.Check.ge(0), coerce=True, nullable=False) for metric in METRICS},
    },
    checks=[
        pa.Check(lambda df: df["outstanding_members"] <= df["members_total"], name="outstanding_exceeds_members"),
        pa.Check(lambda df: df[list(ADMITTED)].sum(axis=1) <= df["outstanding_members"],
                 name="admitted_exceeds_outstanding"),
        pa.Check(lambda df: df["year"].is_unique, name="year_duplicate"),
    ],
)


def engine_for(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return "openpyxl"
    if suffix == ".ods":
        return "calamine"
    return None


def read_one(path: Path) -> pd.DataFrame | None:
    sheets = pd.read_excel(path, sheet_name=None, header=None, engine=engine_for(path))
    chosen = None
    for frame in sheets.values():
        if frame.shape[1] < 9:
            continue
        years = frame[1].map(year_of)
        if years.notna().any():
            chosen = frame[years.notna()].iloc[:, 2:9].copy()
            chosen.columns = list(METRICS)
            chosen.insert(0, "year", years[years.notna()].astype(int).to_numpy())
    if chosen is None:
        return None
    code = _CODE.search(path.name)
    chosen.insert(0, "file", path.name)
    chosen.insert(0, "unit_code", code.group(0) if code else "")
    return chosen.reset_index(drop=True)


def main(argv: list[str]) -> int:
    inbox, out = Path(argv[0]), Path(argv[1])
    frames, failures = [], []
    warnings.simplefilter("ignore")  # openpyxl and pandas warn about styles and dtypes on every file
    for path in sorted(p for p in inbox.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()):
        try:
            frame = read_one(path)
        except Exception as exc:
            failures.append({"file": path.name, "check": "unreadable", "failure_case": str(exc)})
            continue
        if frame is None:
            failures.append({"file": path.name, "check": "form_not_found", "failure_case": ""})
            continue
        try:
            frames.append(SCHEMA.validate(frame, lazy=True))
        except SchemaErrors as errors:
            cases = errors.failure_cases
            failures.extend({"file": path.name, "check": str(check), "failure_case": str(case)}
                            for check, case in zip(cases["check"], cases["failure_case"]))
    values = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["unit_code", "file", "year",
                                                                                        *METRICS])
    with pd.ExcelWriter(out) as writer:
        values.to_excel(writer, sheet_name="Số liệu", index=False)
        pd.DataFrame(failures, columns=["file", "check", "failure_case"]).to_excel(writer, sheet_name="Lỗi",
                                                                                   index=False)
    print(f"{len(values)} rows, {len(failures)} failures")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The floor: the least work that turns the inbox into one table, to measure tonghop against.

    python benchmarks/floor.py INBOX OUT

Every file is opened with python-calamine; the first visible sheet with a year row ("Năm 2021",
"năm 2021", 2021, "2021" in column B) is taken, the three year rows' seven numbers are copied as
they are, and one row per unit × year is written with xlsxwriter (in memory). The unit is the code
the file name starts with. No screening, isolation, identification, validation, issues or feedback:
whatever tonghop spends above this is the price of those.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from python_calamine import CalamineWorkbook, SheetTypeEnum, SheetVisibleEnum

YEARS = (2021, 2022, 2023)
METRICS = ("members_total", "outstanding_members", "quota_assigned", "admitted_pupils", "admitted_students",
           "admitted_workers_state", "admitted_workers_private")
EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".ods")
_YEAR = re.compile(r"^\s*(?:n[aă]m\s+)?(20\d\d)\s*$", re.IGNORECASE)
_CODE = re.compile(r"U\d{5}")


def year_of(value: Any) -> int | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value) if value in YEARS else None
    if isinstance(value, str):
        match = _YEAR.match(value)
        return int(match.group(1)) if match else None
    return None


def read_form(path: Path) -> list[list[Any]] | None:
    """[year, 7 values] for each year row of the form, or None when no sheet holds it."""
    book = CalamineWorkbook.from_path(str(path))
    for index, meta in enumerate(book.sheets_metadata):
        if meta.visible != SheetVisibleEnum.Visible or meta.typ != SheetTypeEnum.WorkSheet:
            continue
        rows = book.get_sheet_by_index(index).to_python()
        found = []
        for row in rows:
            year = year_of(row[1]) if len(row) > 1 else None
            if year is not None:
                found.append([year, *(row[2:9] + [""] * (9 - len(row)))])
                if len(found) == len(YEARS):
                    return found
        if found:
            return found
    return None


def main(argv: list[str]) -> int:
    import xlsxwriter

    inbox, out = Path(argv[0]), Path(argv[1])
    book = xlsxwriter.Workbook(str(out), {"in_memory": True})
    sheet = book.add_worksheet("Số liệu")
    sheet.write_row(0, 0, ["unit_code", "file", "year", *METRICS])
    row = 1
    for path in sorted(p for p in inbox.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()):
        code = _CODE.search(path.name)
        try:
            form = read_form(path)
        except Exception:  # a file calamine cannot open is skipped, nothing more
            continue
        for values in form or []:
            sheet.write_row(row, 0, [code.group(0) if code else "", path.name, *values])
            row += 1
    book.close()
    print(f"{row - 1} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The registry workbook: the province's units, their other names, and the quota it allocated.

Staff maintain it by hand in Excel, so sheet and column names are matched loosely, and every
problem is reported with the sheet and row to fix.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any
from collections.abc import Iterable

from pipeline.core.files import write_file_atomic
from pipeline.core.textnorm import fold, nfc

DEFAULT_REGISTRY = Path("templates/don_vi.xlsx")

UNITS_SHEET = "Đơn vị"
QUOTAS_SHEET = "Chỉ tiêu"
UNIT_COLUMNS = {"code": "Mã đơn vị", "name": "Tên đơn vị", "aliases": "Tên gọi khác", "email": "Email"}
QUOTA_COLUMNS = {"code": "Mã đơn vị", "year": "Năm", "quota": "Chỉ tiêu"}


class RegistryError(ValueError):
    """The registry cannot be used; the message names the sheet and row (in Vietnamese)."""


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    aliases: tuple[str, ...] = ()
    email: str = ""

    @property
    def short_name(self) -> str:
        return self.aliases[0] if self.aliases else self.name


@dataclass(frozen=True)
class Registry:
    units: tuple[Unit, ...]
    quotas: dict[tuple[str, int], int] = field(default_factory=dict)  # (unit code, year) → quota
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_code", {u.code: u for u in self.units})

    def unit(self, code: str) -> Unit:
        return self._by_code[code]  # type: ignore[attr-defined]

    @cached_property
    def codes(self) -> frozenset[str]:
        return frozenset(self._by_code)  # type: ignore[attr-defined]

    @cached_property
    def names(self) -> dict[str, str]:
        """Unit code → name."""
        return {u.code: u.name for u in self.units}


def _find_sheet(workbook: Any, wanted: str, path: Path) -> str:
    for name in workbook.sheet_names:
        if fold(name) == fold(wanted):
            return name
    raise RegistryError(f"Tệp đơn vị {path.name}: không có trang tính \"{wanted}\" "
                        f"(đang có: {', '.join(workbook.sheet_names)}).")


def _header_map(rows: list[list[Any]], columns: dict[str, str], sheet: str, path: Path) -> tuple[int, dict[str, int]]:
    for r, row in enumerate(rows[:10]):
        folded = [fold(str(v)) if v not in (None, "") else "" for v in row]
        found = {key: folded.index(fold(label)) for key, label in columns.items() if fold(label) in folded}
        if "code" in found and len(found) >= 2:
            optional = ("email", "aliases")
            missing = [label for key, label in columns.items() if key not in found and key not in optional]
            if missing:
                raise RegistryError(f"Tệp đơn vị {path.name}, trang \"{sheet}\", dòng {r + 1}: thiếu cột "
                                    + ", ".join(f"\"{m}\"" for m in missing) + ".")
            return r, found
    raise RegistryError(f"Tệp đơn vị {path.name}, trang \"{sheet}\": không tìm thấy dòng tiêu đề với các cột "
                        + ", ".join(f"\"{v}\"" for v in columns.values()) + ".")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return nfc(str(value)).strip()


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and float(value).is_integer():
        return int(value)
    text = _text(value).replace(".", "").replace(",", "").replace(" ", "")
    return int(text) if text.isdigit() else None


class _Where:
    """Where a registry row is, put into words only when there is something to report."""

    __slots__ = ("path", "sheet", "row")

    def __init__(self, path: Path, sheet: str, row: int) -> None:
        self.path, self.sheet, self.row = path, sheet, row

    def __format__(self, spec: str) -> str:
        return f"Tệp đơn vị {self.path.name}, trang \"{self.sheet}\", dòng {self.row + 1}"


def load_registry(path: Path | str = DEFAULT_REGISTRY) -> Registry:
    import python_calamine

    path = Path(path)
    try:
        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
    except Exception as exc:
        raise RegistryError(f"Không mở được tệp đơn vị {path}: {exc}") from exc

    sheet = _find_sheet(workbook, UNITS_SHEET, path)
    rows = workbook.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
    header_row, cols = _header_map(rows, UNIT_COLUMNS, sheet, path)
    units: list[Unit] = []
    seen: dict[str, int] = {}
    for r in range(header_row + 1, len(rows)):
        row = rows[r]

        def get(key: str, row: list = row) -> str:
            return _text(row[cols[key]]) if key in cols and cols[key] < len(row) else ""
        code, name = get("code"), get("name")
        if not code and not name:
            continue
        where = _Where(path, sheet, r)
        if not code:
            raise RegistryError(f"{where}: thiếu mã đơn vị cho \"{name}\".")
        if not name:
            raise RegistryError(f"{where}: thiếu tên đơn vị cho mã \"{code}\".")
        if code in seen:
            raise RegistryError(f"{where}: mã đơn vị \"{code}\" trùng với dòng {seen[code]}.")
        seen[code] = r + 1
        aliases = tuple(a.strip() for a in get("aliases").replace("\n", ";").split(";") if a.strip())
        units.append(Unit(code=code, name=name, aliases=aliases, email=get("email")))
    if not units:
        raise RegistryError(f"Tệp đơn vị {path.name}, trang \"{sheet}\": chưa có đơn vị nào.")

    quotas: dict[tuple[str, int], int] = {}
    try:
        quota_sheet = _find_sheet(workbook, QUOTAS_SHEET, path)
    except RegistryError:
        quota_sheet = ""  # a registry without allocations still identifies units
    if quota_sheet:
        rows = workbook.get_sheet_by_name(quota_sheet).to_python(skip_empty_area=False)
        header_row, cols = _header_map(rows, QUOTA_COLUMNS, quota_sheet, path)
        for r in range(header_row + 1, len(rows)):
            row = rows[r]
            cells = {key: (row[c] if c < len(row) else None) for key, c in cols.items()}
            if all(v in (None, "") for v in cells.values()):
                continue
            where = _Where(path, quota_sheet, r)
            code = _text(cells["code"])
            year, quota = _whole(cells["year"]), _whole(cells["quota"])
            if code not in seen:
                raise RegistryError(f"{where}: mã đơn vị \"{code}\" không có trong trang \"{sheet}\".")
            if year is None or not 1900 <= year < 2100:
                raise RegistryError(f"{where}: năm \"{_text(cells['year'])}\" không hợp lệ.")
            if quota is None or quota < 0:
                raise RegistryError(f"{where}: chỉ tiêu \"{_text(cells['quota'])}\" không phải số nguyên không âm.")
            if (code, year) in quotas:
                raise RegistryError(f"{where}: chỉ tiêu của \"{code}\" năm {year} bị nhập hai lần.")
            quotas[(code, year)] = quota
    return Registry(units=tuple(units), quotas=quotas, source=str(path))


def write_registry(path: Path | str, units: Iterable[Unit], quotas: dict[tuple[str, int], int], *,
                   author: str, created: datetime | None = None) -> Path:
    """Write a registry workbook in the layout `load_registry` reads: sheet "Đơn vị" (code, name,
    other names joined by "; ", email) and sheet "Chỉ tiêu" (code, year, quota, in `quotas` order).
    A fixed `created` date keeps the file byte-identical from one writing to the next."""
    import xlsxwriter

    path = Path(path)
    units = list(units)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()  # written whole, then renamed into place: a reader never meets half a registry
    wb = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False})
    wb.set_properties({"title": "Danh mục đơn vị và chỉ tiêu kết nạp Đảng", "author": author,
                       "created": created or datetime(2024, 1, 15, 8, 0, 0)})
    font = {"font_name": "Times New Roman", "font_size": 12, "border": 1}
    head = wb.add_format({**font, "bold": True, "bg_color": "#DDEBF7", "valign": "vcenter"})
    text = wb.add_format(font)
    number = wb.add_format({**font, "num_format": "0"})

    sheet = wb.add_worksheet(UNITS_SHEET)
    for col, label in enumerate(UNIT_COLUMNS.values()):
        sheet.write_string(0, col, label, head)
    for row, unit in enumerate(units, start=1):
        for col, value in enumerate((unit.code, unit.name, "; ".join(unit.aliases), unit.email)):
            sheet.write_string(row, col, value, text)
    for col, width in enumerate((12, 44, 40, 36)):
        sheet.set_column(col, col, width)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, len(units), len(UNIT_COLUMNS) - 1)

    quota_sheet = wb.add_worksheet(QUOTAS_SHEET)
    for col, label in enumerate(QUOTA_COLUMNS.values()):
        quota_sheet.write_string(0, col, label, head)
    for row, ((code, year), quota) in enumerate(quotas.items(), start=1):
        quota_sheet.write_string(row, 0, code, text)
        quota_sheet.write_number(row, 1, year, number)
        quota_sheet.write_number(row, 2, quota, number)
    for col, width in enumerate((12, 8, 10)):
        quota_sheet.set_column(col, col, width)
    quota_sheet.freeze_panes(1, 0)
    quota_sheet.autofilter(0, 0, len(quotas), len(QUOTA_COLUMNS) - 1)

    sheet.activate()
    wb.close()
    return write_file_atomic(path, buffer.getvalue())

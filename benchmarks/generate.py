"""Write a synthetic national-scale inbox: N submissions and the registry that names their units.

    python benchmarks/generate.py N OUT_DIR [--seed S] [--pool DIR]

writes OUT_DIR/inbox/ (one file per unit), OUT_DIR/don_vi.xlsx (sheets "Đơn vị" and "Chỉ tiêu", laid
out like templates/don_vi.xlsx) and OUT_DIR/manifest.json (for every file: its unit, the template it
came from, and the verdict and issue codes tonghop should give it).

Writing thousands of workbooks with openpyxl or LibreOffice would take longer than the runs being
measured, so a pool of ~50 genuine template files is produced once (layouts × producers, a share of
them with defects) by tests/builders.py and the real programs, and every unit's file is a copy of a
pool member: for .xlsx members the unit line and the numbers are rewritten inside the sheet XML (and
the shared strings), so each unit sends its own figures; .xls and .ods members are copied as they are
and their unit is told by the file name, as when a unit leaves the unit line blank.

The same N and seed give the same files, units, figures and verdicts. Files LibreOffice made may
differ in bytes between two pools (it stamps dates), never in content.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import builders  # noqa: E402
from builders import (  # noqa: E402
    BLANK_UNIT_LINE,
    METRICS,
    PROFILES,
    YEARS,
    CellInput,
    FormSpec,
    default_values,
)

# Bump when the pool's recipe changes, so a cached pool is rebuilt rather than reused.
POOL_VERSION = 4
BASE_MTIME = datetime(2024, 2, 1, 7, 30).timestamp()

# ---------------------------------------------------------------------------------------------- units

PROVINCES: tuple[tuple[str, str], ...] = (
    ("tỉnh", "Bắc Ninh"), ("tỉnh", "Bắc Giang"), ("thành phố", "Hà Nội"), ("thành phố", "Hải Phòng"),
    ("tỉnh", "Quảng Ninh"), ("tỉnh", "Thái Bình"), ("tỉnh", "Nam Định"), ("tỉnh", "Ninh Bình"),
    ("tỉnh", "Thanh Hóa"), ("tỉnh", "Nghệ An"), ("tỉnh", "Hà Tĩnh"), ("tỉnh", "Quảng Bình"),
    ("tỉnh", "Quảng Trị"), ("thành phố", "Huế"), ("thành phố", "Đà Nẵng"), ("tỉnh", "Quảng Nam"),
    ("tỉnh", "Quảng Ngãi"), ("tỉnh", "Bình Định"), ("tỉnh", "Phú Yên"), ("tỉnh", "Khánh Hòa"),
    ("tỉnh", "Gia Lai"), ("tỉnh", "Đắk Lắk"), ("tỉnh", "Lâm Đồng"), ("tỉnh", "Bình Phước"),
    ("tỉnh", "Tây Ninh"), ("tỉnh", "Bình Dương"), ("tỉnh", "Đồng Nai"), ("thành phố", "Hồ Chí Minh"),
    ("tỉnh", "Long An"), ("tỉnh", "Tiền Giang"), ("tỉnh", "Bến Tre"), ("tỉnh", "Vĩnh Long"),
    ("thành phố", "Cần Thơ"), ("tỉnh", "An Giang"), ("tỉnh", "Kiên Giang"), ("tỉnh", "Cà Mau"),
    ("tỉnh", "Lào Cai"), ("tỉnh", "Yên Bái"), ("tỉnh", "Điện Biên"), ("tỉnh", "Sơn La"),
)

# (kind of unit, figures profile of tests/builders.py, share of units)
UNIT_KINDS: tuple[tuple[str, str, float], ...] = (
    ("Huyện đoàn", "district", 0.46),
    ("Thành đoàn", "district", 0.08),
    ("Thị đoàn", "district", 0.08),
    ("Đoàn Khối các cơ quan", "agency", 0.07),
    ("Đoàn Khối Doanh nghiệp", "enterprise", 0.07),
    ("Đoàn Thanh niên Công an", "armed", 0.05),
    ("Đoàn Trường Đại học", "university", 0.11),
    ("Đoàn Trường Cao đẳng", "college", 0.08),
)


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    alias: str  # what units write in file names; listed under "Tên gọi khác"
    email: str
    profile: str


def make_units(n: int, seed: int) -> list[Unit]:
    rng = random.Random(f"units:{seed}")
    weights = [share for _, _, share in UNIT_KINDS]
    units = []
    for i in range(1, n + 1):
        kind, profile, _ = rng.choices(UNIT_KINDS, weights)[0]
        prefix, province = rng.choice(PROVINCES)
        # A number unique across the country keeps every name and alias unambiguous.
        alias = f"{kind} Số {i}"
        units.append(Unit(code=f"U{i:05d}", name=f"{alias} {prefix} {province}", alias=alias,
                          email=f"u{i:05d}@example.vn", profile=profile))
    return units


def unit_quotas(unit: Unit, seed: int) -> dict[int, int]:
    rng = random.Random(f"quota:{seed}:{unit.code}")
    low, high = (int(x) for x in PROFILES[unit.profile]["quota"])
    base = rng.randint(low, high)
    return {year: max(low, min(high, base + rng.randint(-2, 3))) for year in YEARS}


# ---------------------------------------------------------------------------------------------- pool

LAYOUTS: dict[str, dict[str, Any]] = {
    "A": {},
    "B": {"title_rows": 2, "header_rows": 3, "year_labels": "năm", "total_row": "Tổng cộng"},
    "C": {"title_rows": 4, "year_labels": "number", "instruction_sheet": True},
    "D": {"title_rows": 1, "header_rows": 3, "year_labels": "text", "total_row": "Cộng", "hidden_sheet": True},
    "E": {"title_rows": 3, "instruction_sheet": True, "total_row": "Tổng cộng",
          "inserted_rows": [[f"({k})" for k in range(1, 10)]]},
    "F": {"sheet_name": "PTĐ 2021-2023", "total_row": "Tổng cộng"},
}
CLEAN_PRODUCERS = ("openpyxl", "xlsxwriter", "soffice:xlsx", "ssconvert:xlsx", "soffice:xls", "soffice:ods")
PATCHABLE = frozenset({"openpyxl", "xlsxwriter", "soffice:xlsx", "ssconvert:xlsx"})

# Defect → (verdict, error/warning codes tonghop gives it).
DEFECTS: dict[str, tuple[str, frozenset[str]]] = {
    "": ("accepted", frozenset()),
    "text_numbers": ("accepted", frozenset()),
    "text_comma": ("accepted", frozenset()),
    "no_unit_line": ("accepted", frozenset()),
    "blanks": ("accepted", frozenset({"value_blank"})),
    "wrong_total": ("accepted", frozenset({"total_row_mismatch"})),
    "quota": ("accepted", frozenset({"quota_mismatch"})),
    "negative": ("rejected", frozenset({"value_negative"})),
    "word": ("rejected", frozenset({"value_not_number"})),
    "fraction": ("rejected", frozenset({"value_fraction"})),
    "outstanding": ("rejected", frozenset({"outstanding_exceeds_members"})),
}

# (producer, layout, defect, share of units); about 15 % of units get a template with a defect.
DEFECTIVE: tuple[tuple[str, str, str, float], ...] = (
    ("openpyxl", "A", "text_numbers", 0.020),
    ("openpyxl", "B", "text_comma", 0.015),
    ("xlsxwriter", "B", "blanks", 0.020),
    ("soffice:xlsx", "D", "wrong_total", 0.015),
    ("openpyxl", "C", "negative", 0.010),
    ("xlsxwriter", "E", "word", 0.010),
    ("openpyxl", "F", "fraction", 0.005),
    ("xlsxwriter", "A", "quota", 0.015),
    ("xlsxwriter", "C", "no_unit_line", 0.010),
    ("ssconvert:xlsx", "C", "outstanding", 0.010),
    ("soffice:xls", "B", "blanks", 0.010),
    ("soffice:ods", "A", "word", 0.005),
)
# Shares of the clean templates by producer: most units send .xlsx, some still .xls, a few .ods.
CLEAN_SHARES = {"openpyxl": 0.20, "xlsxwriter": 0.22, "soffice:xlsx": 0.18, "ssconvert:xlsx": 0.145,
                "soffice:xls": 0.06, "soffice:ods": 0.05}


@dataclass(frozen=True)
class Template:
    key: str
    producer: str
    layout: str
    defect: str
    weight: float

    @property
    def extension(self) -> str:
        fmt = self.producer.split(":")[-1]
        return ".xlsx" if fmt in ("openpyxl", "xlsxwriter") else f".{fmt}"

    @property
    def patchable(self) -> bool:
        return self.producer in PATCHABLE

    @property
    def expected(self) -> tuple[str, frozenset[str]]:
        return DEFECTS[self.defect]


def pool_templates() -> list[Template]:
    templates = []
    for producer in CLEAN_PRODUCERS:
        # Gnumeric drops the hidden state of a sheet, so its copy of layout D would show the stale sheet first.
        layouts = [name for name in LAYOUTS
                   if not (producer.startswith("ssconvert") and "hidden_sheet" in LAYOUTS[name])]
        for layout in layouts:
            share = CLEAN_SHARES[producer] / len(layouts)
            templates.append(Template(f"{producer.replace(':', '-')}-{layout}", producer, layout, "", share))
    for producer, layout, defect, share in DEFECTIVE:
        templates.append(Template(f"{producer.replace(':', '-')}-{layout}-{defect}", producer, layout, defect, share))
    return templates


def _thousands(number: int, sep: str) -> str:
    return f"{number:,}".replace(",", sep)


def cell_kinds(defect: str) -> dict[tuple[int, str], str]:
    """How a template writes particular cells; every other cell is a plain number."""
    if defect == "text_numbers":
        return {**{(y, "members_total"): "text_dot" for y in YEARS}, (2022, "outstanding_members"): "text_padded"}
    if defect == "text_comma":
        return {(2021, "members_total"): "text_comma", (2022, "members_total"): "text_space",
                (2023, "members_total"): "text_space", (2021, "outstanding_members"): "text_padded"}
    if defect == "blanks":
        return {(2021, "admitted_pupils"): "blank", (2022, "admitted_students"): "dash"}
    if defect == "negative":
        return {(2022, "admitted_workers_state"): "negative"}
    if defect == "word":
        return {(2021, "admitted_students"): "word"}
    if defect == "fraction":
        return {(2023, "admitted_pupils"): "fraction"}
    if defect == "quota":
        return {(y, "quota_assigned"): "quota_off" for y in YEARS}
    if defect == "outstanding":
        return {(2023, "outstanding_members"): "above_members"}
    return {}


def render(values: dict[int, dict[str, int]], kinds: dict[tuple[int, str], str]) -> tuple[
        dict[int, dict[str, CellInput]], dict[str, float]]:
    """Cells as the unit typed them, and what tonghop parses out of each metric's column (for totals)."""
    typed: dict[int, dict[str, CellInput]] = {}
    parsed_sums: dict[str, float] = {m: 0 for m in METRICS}
    for year in YEARS:
        typed[year] = {}
        for metric in METRICS:
            value = int(values[year][metric])
            kind = kinds.get((year, metric), "number")
            cell: CellInput
            parsed: float = value
            if kind == "text_dot":
                cell = _thousands(value, ".")
            elif kind == "text_comma":
                cell = _thousands(value, ",")
            elif kind == "text_space":
                cell = _thousands(value, " ")
            elif kind == "text_padded":
                cell = f" {value} "
            elif kind == "blank":
                cell, parsed = None, 0
            elif kind == "dash":
                cell, parsed = "-", 0
            elif kind == "negative":
                cell = parsed = -max(value, 1)
            elif kind == "word":
                cell, parsed = "không có", 0
            elif kind == "fraction":
                cell = parsed = value + 0.5
            elif kind == "quota_off":
                cell = parsed = value + 2
            elif kind == "above_members":
                cell = parsed = int(values[year]["members_total"]) + 5
            else:
                cell = value
            typed[year][metric] = cell
            parsed_sums[metric] += parsed
    return typed, parsed_sums


def literal_total(template: Template) -> bool:
    """Totals typed as numbers rather than SUM formulas.

    openpyxl cannot store a formula's result, and a SUM skips text numbers that tonghop does count.
    """
    return template.producer == "openpyxl" or template.defect in ("text_numbers", "text_comma", "wrong_total")


def totals_for(template: Template, sums: dict[str, float]) -> dict[str, CellInput]:
    totals: dict[str, CellInput] = {m: (int(v) if float(v).is_integer() else v) for m, v in sums.items()}
    if template.defect == "wrong_total":
        totals["members_total"] = int(sums["members_total"]) + 10
    return totals


def template_spec(template: Template, seed: int) -> tuple[FormSpec, dict[int, int]]:
    quotas = {year: 12 + index for index, year in enumerate(YEARS)}
    values = default_values(f"pool:{seed}:{template.key}", quotas=quotas)
    typed, sums = render(values, cell_kinds(template.defect))
    layout = dict(LAYOUTS[template.layout])
    has_total = bool(layout.get("total_row"))
    unit_line = "BCH HUYỆN ĐOÀN MẪU BIỂU" if template.patchable and template.defect != "no_unit_line" \
        else BLANK_UNIT_LINE
    spec = FormSpec(unit_line=unit_line, values=typed,
                    total_values=totals_for(template, sums) if has_total and literal_total(template) else None,
                    signer="Nguyễn Văn An", **layout)
    return spec, quotas


def build_template(template: Template, spec: FormSpec, folder: Path) -> Path:
    target = folder / f"{template.key}{template.extension}"
    if template.producer == "openpyxl":
        return builders.write_openpyxl(spec, target)
    if template.producer == "xlsxwriter":
        return builders.write_xlsxwriter(spec, target)
    with tempfile.TemporaryDirectory(prefix="tonghop-pool-") as scratch:
        source = builders.write_xlsxwriter(spec, Path(scratch) / f"{template.key}.xlsx")
        program, fmt = template.producer.split(":")
        if program == "soffice":
            made = builders.convert_with_soffice(source, fmt, Path(scratch) / "out")
            shutil.move(str(made), target)
        else:
            builders.convert_with_ssconvert(source, target)
    return target


def ensure_pool(folder: Path, seed: int) -> dict[str, Path]:
    """The pool's files, built unless `folder` already holds this version for this seed."""
    templates = pool_templates()
    stamp = folder / "pool.json"
    wanted = {"version": POOL_VERSION, "seed": seed, "templates": [t.key for t in templates]}
    paths = {t.key: folder / f"{t.key}{t.extension}" for t in templates}
    if stamp.exists() and json.loads(stamp.read_text(encoding="utf-8")) == wanted \
            and all(p.exists() for p in paths.values()):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    for template in templates:
        spec, _ = template_spec(template, seed)
        build_template(template, spec, folder)
    stamp.write_text(json.dumps(wanted, ensure_ascii=False, indent=1), encoding="utf-8")
    return paths


# ---------------------------------------------------------------------------------------------- patching

_CELL = re.compile(rb"<c\b([^>]*?)(?:/>|>(.*?)</c>)", re.S)
_REF = re.compile(rb'\br="([A-Z]+[0-9]+)"')
_TYPE = re.compile(rb'\s+t="[^"]*"')
_FORMULA = re.compile(rb"<f\b[^>]*?(?:/>|>.*?</f>)", re.S)
_SI = re.compile(rb"<si\b")
_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
       "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
       "p": "http://schemas.openxmlformats.org/package/2006/relationships"}


def _number_text(value: float | int) -> bytes:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).encode()


@dataclass
class PatchableBook:
    """An .xlsx pool member held in memory: its zip members and where the form's cells are."""

    entries: list[tuple[zipfile.ZipInfo, bytes]]
    sheet_part: str
    strings_part: str  # "" when the producer writes inline strings only
    string_count: int
    cells: dict[tuple[int, str], str]  # (year, metric) → address
    total_cells: dict[str, str]
    literal_total: bool
    template: Template

    @classmethod
    def load(cls, path: Path, template: Template, spec: FormSpec) -> "PatchableBook":
        with zipfile.ZipFile(path) as archive:
            entries = [(info, archive.read(info.filename)) for info in archive.infolist()]
        members = {info.filename: data for info, data in entries}
        workbook = ElementTree.fromstring(members["xl/workbook.xml"])
        rels = ElementTree.fromstring(members["xl/_rels/workbook.xml.rels"])
        targets, strings_part = {}, ""
        for rel in rels.iter(f"{{{_NS['p']}}}Relationship"):
            target = rel.get("Target", "")
            target = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            targets[rel.get("Id")] = target
            if rel.get("Type", "").endswith("/sharedStrings"):
                strings_part = target
        sheet_part = ""
        for sheet in workbook.iter(f"{{{_NS['m']}}}sheet"):
            if sheet.get("name") == spec.sheet_name:
                sheet_part = targets[sheet.get(f"{{{_NS['r']}}}id")]
        if not sheet_part:
            raise RuntimeError(f"{path.name}: no sheet named {spec.sheet_name!r}")
        count = len(_SI.findall(members[strings_part])) if strings_part else 0
        cells = {(year, metric): spec.cell_of(year, metric) for year in YEARS for metric in METRICS}
        totals = {metric: spec.total_cell(metric) for metric in METRICS} if spec.total_row else {}
        return cls(entries, sheet_part, strings_part, count, cells, totals, literal_total(template), template)

    def render(self, unit_line: str | None, values: dict[int, dict[str, int]]) -> bytes:
        """This template's file filled in by another unit: its unit line, its numbers."""
        typed, sums = render(values, cell_kinds(self.template.defect))
        wanted: dict[str, CellInput] = {}
        if unit_line is not None:
            wanted["A2"] = unit_line
        for (year, metric), address in self.cells.items():
            if typed[year][metric] is not None:
                wanted[address] = typed[year][metric]
        if self.total_cells:
            totals = totals_for(self.template, sums)
            for metric, address in self.total_cells.items():
                wanted[address] = totals[metric]
        new_strings: list[str] = []
        members = dict((info.filename, data) for info, data in self.entries)
        sheet = self._patch_sheet(members[self.sheet_part], wanted, new_strings)
        replaced = {self.sheet_part: sheet}
        if new_strings:
            replaced[self.strings_part] = self._append_strings(members[self.strings_part], new_strings)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for info, data in self.entries:
                archive.writestr(info, replaced.get(info.filename, data))
        return buffer.getvalue()

    def _patch_sheet(self, xml: bytes, wanted: dict[str, CellInput], new_strings: list[str]) -> bytes:
        found: set[str] = set()

        def rewrite(match: re.Match[bytes]) -> bytes:
            attrs, body = match.group(1), match.group(2) or b""
            ref = _REF.search(attrs)
            if ref is None or ref.group(1).decode() not in wanted:
                return match.group(0)
            address = ref.group(1).decode()
            value = wanted[address]
            found.add(address)
            old_type = _TYPE.search(attrs)
            bare = _TYPE.sub(b"", attrs)
            formula = _FORMULA.search(body)
            if isinstance(value, str):
                if old_type is not None and b'"inlineStr"' in old_type.group(0):
                    return b"<c" + bare + b' t="inlineStr"><is><t xml:space="preserve">' + \
                        escape(value).encode() + b"</t></is></c>"
                if not self.strings_part:
                    raise RuntimeError(f"{self.template.key}: text for {address} but no shared strings")
                new_strings.append(value)
                return b"<c" + bare + b' t="s"><v>' + str(self.string_count + len(new_strings) - 1).encode() + \
                    b"</v></c>"
            kept_type = b' t="n"' if old_type is not None and b'"n"' in old_type.group(0) else b""
            keep_formula = formula.group(0) if formula is not None and not self.literal_total else b""
            assert isinstance(value, (int, float))
            return b"<c" + bare + kept_type + b">" + keep_formula + b"<v>" + _number_text(value) + b"</v></c>"

        patched = _CELL.sub(rewrite, xml)
        lost = set(wanted) - found
        if lost:
            raise RuntimeError(f"{self.template.key}: cells {sorted(lost)} not found in {self.sheet_part}")
        return patched

    def _append_strings(self, xml: bytes, strings: list[str]) -> bytes:
        added = b"".join(b'<si><t xml:space="preserve">' + escape(s).encode() + b"</t></si>" for s in strings)
        end = xml.rindex(b"</sst>")
        xml = xml[:end] + added + xml[end:]

        def bump(match: re.Match[bytes]) -> bytes:
            return match.group(1) + str(int(match.group(2)) + len(strings)).encode() + b'"'

        return re.sub(rb'(\b(?:count|uniqueCount)=")(\d+)"', bump, xml[:400], count=2) + xml[400:]


# ---------------------------------------------------------------------------------------------- registry

def write_registry(path: Path, units: list[Unit], quotas: dict[str, dict[int, int]]) -> Path:
    """The registry, in the layout tonghop reads (pipeline.core.registry.write_registry)."""
    from pipeline.core import registry

    return registry.write_registry(
        path, (registry.Unit(u.code, u.name, (u.alias,) if u.alias else (), u.email) for u in units),
        {(u.code, year): quotas[u.code][year] for u in units for year in YEARS},
        author="Ban Tổ chức - Kiểm tra Trung ương Đoàn")


# ---------------------------------------------------------------------------------------------- inbox

FILE_NAMES = (
    "{code} - {alias}{ext}",
    "Báo cáo PTĐ - {code} {alias}{ext}",
    "{code}_{alias}{ext}",
    "BC phát triển đảng {code}{ext}",
    "{code} {alias} (bản cuối){ext}",
)


def _prepare(out_dir: Path) -> Path:
    inbox = out_dir / "inbox"
    if inbox.exists():
        if not (out_dir / "manifest.json").exists() and any(inbox.iterdir()):
            raise SystemExit(f"{inbox} exists and was not written by this script; choose another OUT_DIR")
        shutil.rmtree(inbox)
    inbox.mkdir(parents=True)
    return inbox


def generate(n: int, out_dir: Path, seed: int = 1, pool_dir: Path | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    pool_dir = pool_dir or out_dir / "pool"
    paths = ensure_pool(pool_dir, seed)
    pool_seconds = time.perf_counter() - started
    templates = pool_templates()
    specs = {t.key: template_spec(t, seed) for t in templates}
    books = {t.key: PatchableBook.load(paths[t.key], t, specs[t.key][0]) for t in templates if t.patchable}
    raw = {t.key: paths[t.key].read_bytes() for t in templates if not t.patchable}

    units = make_units(n, seed)
    rng = random.Random(f"inbox:{seed}")
    weights = [t.weight for t in templates]
    inbox = _prepare(out_dir)
    (out_dir / "manifest.json").unlink(missing_ok=True)
    quotas: dict[str, dict[int, int]] = {}
    files = []
    for index, unit in enumerate(units):
        template = rng.choices(templates, weights)[0]
        pattern = rng.choice(FILE_NAMES)
        name = pattern.format(code=unit.code, alias=unit.alias, ext=template.extension)
        if template.patchable:
            quotas[unit.code] = unit_quotas(unit, seed)
            values = default_values(f"{seed}:{unit.code}", profile=unit.profile, quotas=quotas[unit.code])
            unit_line = None if template.defect == "no_unit_line" else f"BCH {unit.name.upper()}"
            data = books[template.key].render(unit_line, values)
        else:
            # The copy keeps the template's figures, so the registry allocates the quota it reports.
            quotas[unit.code] = dict(specs[template.key][1])
            data = raw[template.key]
        path = inbox / name
        path.write_bytes(data)
        mtime = BASE_MTIME + index * 61
        os.utime(path, (mtime, mtime))
        status, codes = template.expected
        files.append({"file": name, "unit": unit.code, "template": template.key, "producer": template.producer,
                      "defect": template.defect, "expected_status": status, "expected_codes": sorted(codes)})
    write_registry(out_dir / "don_vi.xlsx", units, quotas)
    manifest = {"n": n, "seed": seed, "pool_version": POOL_VERSION, "pool": str(pool_dir),
                "seconds": {"pool": round(pool_seconds, 2), "total": round(time.perf_counter() - started, 2)},
                "files": files}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, help="number of units (and files)")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pool", type=Path, default=None,
                        help="folder of the template pool, reused when it matches (default OUT_DIR/pool)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("N must be at least 1")
    manifest = generate(args.n, args.out_dir, args.seed, args.pool)
    shares: dict[str, int] = {}
    for entry in manifest["files"]:
        shares[entry["expected_status"]] = shares.get(entry["expected_status"], 0) + 1
    print(f"{args.n} files in {args.out_dir / 'inbox'} ({manifest['seconds']['total']} s, pool "
          f"{manifest['seconds']['pool']} s); expected: {shares}")
    return 0



def verify_run(out_dir: Path, run_folder: Path) -> list[str]:
    """Files whose unit, verdict or error/warning codes in a tonghop run folder differ from the manifest."""
    import csv

    manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
    with open(run_folder / "submissions.csv", encoding="utf-8", newline="") as handle:
        rows = {row["file"]: row for row in csv.DictReader(handle) if row["file"]}
    codes: dict[str, set[str]] = {}
    with open(run_folder / "issues.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["severity"] != "info":
                codes.setdefault(row["file"], set()).add(row["code"])
    problems = []
    for entry in manifest["files"]:
        row = rows.get(entry["file"])
        if row is None:
            problems.append(f"{entry['file']}: not in submissions.csv")
            continue
        found = codes.get(entry["file"], set())
        if (row["unit_code"], row["status"], found) != (entry["unit"], entry["expected_status"],
                                                        set(entry["expected_codes"])):
            problems.append(f"{entry['file']} ({entry['template']}): got {row['unit_code']} {row['status']} "
                            f"{sorted(found)}, expected {entry['unit']} {entry['expected_status']} "
                            f"{entry['expected_codes']}")
    extra = set(rows) - {entry["file"] for entry in manifest["files"]}
    problems.extend(f"{name}: not generated" for name in sorted(extra))
    return problems


if __name__ == "__main__":
    sys.exit(main())

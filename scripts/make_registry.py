"""Write the unit registry ``templates/don_vi.xlsx``.

Sheet "Đơn vị" lists every unit expected to report (code, official name,
other names people write on the form, contact email); sheet "Chỉ tiêu"
holds the party-admission quota the province assigned to each unit per
year. ``make_sample_inbox.py`` imports the same data so the sample reports
agree with the registry.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGISTRY_PATH = ROOT / "templates" / "don_vi.xlsx"
YEARS: tuple[int, ...] = (2021, 2022, 2023)


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    aliases: tuple[str, ...]
    email: str
    # Picks the shape of the sample figures (see tests/builders.py PROFILES).
    profile: str
    # Typical yearly quota; the registry varies it a little per year.
    base_quota: int


UNITS: tuple[Unit, ...] = (
    Unit("TDM", "Thành đoàn Thủ Dầu Một", ("Thủ Dầu Một", "TP Thủ Dầu Một", "TDM"),
         "thanhdoanthudaumot@example.vn", "district", 52),
    Unit("TA", "Thành đoàn Thuận An", ("Thuận An", "TP Thuận An"),
         "thanhdoanthuanan@example.vn", "district", 48),
    Unit("DA", "Thành đoàn Dĩ An", ("Dĩ An", "TP Dĩ An"),
         "thanhdoandian@example.vn", "district", 45),
    Unit("TU", "Thành đoàn Tân Uyên", ("Tân Uyên", "TP Tân Uyên"),
         "thanhdoantanuyen@example.vn", "district", 32),
    Unit("BC", "Thành đoàn Bến Cát", ("Bến Cát", "TP Bến Cát"),
         "thanhdoanbencat@example.vn", "district", 30),
    Unit("BB", "Huyện đoàn Bàu Bàng", ("Bàu Bàng",),
         "huyendoanbaubang@example.vn", "district", 14),
    Unit("DT", "Huyện đoàn Dầu Tiếng", ("Dầu Tiếng",),
         "huyendoandautieng@example.vn", "district", 18),
    Unit("BTU", "Huyện đoàn Bắc Tân Uyên", ("Bắc Tân Uyên",),
         "huyendoanbactanuyen@example.vn", "district", 12),
    Unit("PG", "Huyện đoàn Phú Giáo", ("Phú Giáo",),
         "huyendoanphugiao@example.vn", "district", 16),
    Unit("KCQ", "Đoàn Khối các cơ quan tỉnh", ("Đoàn Khối Cơ quan", "Khối cơ quan tỉnh"),
         "doankhoicoquan@example.vn", "agency", 22),
    Unit("KDN", "Đoàn Khối Doanh nghiệp tỉnh", ("Đoàn Khối Doanh nghiệp", "Khối doanh nghiệp tỉnh"),
         "doankhoidoanhnghiep@example.vn", "enterprise", 36),
    Unit("CA", "Đoàn Thanh niên Công an tỉnh", ("Công an tỉnh", "Đoàn TN Công an tỉnh"),
         "doanthanhniencongan@example.vn", "armed", 26),
    Unit("QS", "Đoàn Thanh niên Bộ Chỉ huy Quân sự tỉnh", ("Quân sự tỉnh", "BCHQS tỉnh"),
         "doanthanhnienquansu@example.vn", "armed", 10),
    Unit("DHTDM", "Đoàn Trường Đại học Thủ Dầu Một", ("ĐH Thủ Dầu Một", "TDMU"),
         "doantruong.tdmu@example.edu.vn", "university", 32),
    Unit("DHBD", "Đoàn Trường Đại học Bình Dương", ("ĐH Bình Dương",),
         "doantruong.bdu@example.edu.vn", "university", 12),
    Unit("DHQTMD", "Đoàn Trường Đại học Quốc tế Miền Đông", ("ĐH Quốc tế Miền Đông", "EIU"),
         "doantruong.eiu@example.edu.vn", "university", 4),
    Unit("CDVNS", "Đoàn Trường Cao đẳng Việt Nam – Singapore", ("CĐ Việt Nam - Singapore",),
         "doantruong.vsc@example.edu.vn", "college", 6),
    Unit("CDYT", "Đoàn Trường Cao đẳng Y tế Bình Dương", ("CĐ Y tế Bình Dương",),
         "doantruong.cdyt@example.edu.vn", "college", 5),
)

UNITS_BY_CODE: dict[str, Unit] = {unit.code: unit for unit in UNITS}
DISTRICT_CODES = frozenset({"TDM", "TA", "DA", "TU", "BC", "BB", "DT", "BTU", "PG"})


def quotas() -> dict[str, dict[int, int]]:
    """Quota per unit and year, stable across runs (string seeds hash with SHA-512)."""
    out: dict[str, dict[int, int]] = {}
    for unit in UNITS:
        rng = random.Random(f"quota:{unit.code}")
        low, high = (5, 60) if unit.code in DISTRICT_CODES else (3, 40)
        spread = max(1, round(unit.base_quota * 0.12))
        out[unit.code] = {
            year: max(low, min(high, unit.base_quota + rng.randint(-spread, spread) + 2 * index))
            for index, year in enumerate(YEARS)
        }
    return out


def write_registry(path: Path = REGISTRY_PATH) -> Path:
    from pipeline.core import registry

    table = quotas()
    return registry.write_registry(
        path, (registry.Unit(u.code, u.name, tuple(u.aliases), u.email) for u in UNITS),
        {(u.code, year): table[u.code][year] for u in UNITS for year in YEARS},
        author="Ban Tổ chức - Kiểm tra Tỉnh đoàn Bình Dương")


def main() -> int:
    path = write_registry()
    print(f"Đã ghi {path.relative_to(ROOT)}: {len(UNITS)} đơn vị, {len(UNITS) * len(YEARS)} dòng chỉ tiêu.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Which unit sent a file: unit line first, then the file name, loosely matched."""

from __future__ import annotations

import unicodedata

import pytest

from pipeline.stages.identify import UnitMatcher, identify
from pipeline.read.spreadsheet import find_unit_line


@pytest.fixture(scope="module")
def matcher(registry):
    return UnitMatcher(registry)


@pytest.mark.parametrize(
    ("unit_line", "code"),
    [
        ("BCH HUYỆN ĐOÀN DẦU TIẾNG", "DT"),
        ("Ban Chấp hành Huyện đoàn Dầu Tiếng", "DT"),
        ("BCH HUYEN DOAN DAU TIENG", "DT"),
        ("bch. huyện đoàn dầu tiếng", "DT"),
        ("BCH THÀNH ĐOÀN THỦ DẦU MỘT", "TDM"),
        ("BCH ĐOÀN TRƯỜNG ĐẠI HỌC THỦ DẦU MỘT", "DHTDM"),
        ("BCH ĐOÀN TRƯỜNG ĐH THỦ DẦU MỘT", "DHTDM"),
        ("BCH HUYỆN ĐOÀN BẮC TÂN UYÊN", "BTU"),
        ("BCH THÀNH ĐOÀN TÂN UYÊN", "TU"),
        ("BCH ĐOÀN KHỐI DOANH NGHIỆP TỈNH", "KDN"),
        ("BCH ĐOÀN TN CÔNG AN TỈNH", "CA"),
        ("BCH ĐOÀN TRƯỜNG CAO ĐẲNG VIỆT NAM - SINGAPORE", "CDVNS"),
        ("BCH ĐOÀN TRƯỜNG CĐ Y TẾ BÌNH DƯƠNG", "CDYT"),
    ],
)
def test_unit_line_identifies(unit_line, code, matcher):
    found = identify(unit_line, "bao_cao.xlsx", matcher)
    assert (found.code, found.source) == (code, "unit_line")


@pytest.mark.parametrize(
    ("file_name", "code"),
    [
        ("Báo cáo PTĐ - Huyện đoàn Dầu Tiếng.xlsx", "DT"),
        ("TDM_bao_cao_PTD_2021-2023.xls", "TDM"),
        ("Phu Giao (2).ods", "PG"),
        ("bac tan uyen lan 2.xlsx", "BTU"),
        ("BaoCao_TanUyen.xlsx", "TU"),  # words glued in CamelCase are split
        ("PTD_BenCat_2024.xlsx", "BC"),
        ("baocao_dautieng.xlsx", "DT"),  # a name written as one word
        ("ĐH Thủ Dầu Một.xlsx", "DHTDM"),
        ("da sua - bao cao.xlsx", ""),  # two-letter codes never match loose words
    ],
)
def test_file_name_is_the_fallback(file_name, code, matcher):
    found = identify("BCH.....", file_name, matcher)
    assert found.code == code
    assert found.source == ("file_name" if code else "")


def test_nfd_file_names_match_like_nfc(matcher):
    name = unicodedata.normalize("NFD", "Báo cáo Huyện đoàn Phú Giáo.xlsx")
    assert identify("", name, matcher).code == "PG"


def test_ambiguous_text_names_the_candidates(matcher):
    found = identify("", "Thuận An - Dĩ An.xlsx", matcher)
    assert found.code == ""
    assert set(found.candidates) == {"TA", "DA"}


def test_file_name_settles_a_tied_unit_line(matcher):
    found = identify("BCH THUẬN AN DĨ AN", "Di An.xlsx", matcher)
    assert found.code == "DA"


def test_unit_line_wins_over_file_name_and_notes_the_conflict(matcher):
    found = identify("BCH HUYỆN ĐOÀN PHÚ GIÁO", "Dau Tieng.xlsx", matcher)
    assert (found.code, found.conflict) == ("PG", "DT")


def test_unknown_unit(matcher):
    found = identify("BCH XÃ ĐẢO XA", "bao cao.xlsx", matcher)
    assert (found.code, found.candidates) == ("", ())


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # Two lines in one cell.
        ([["BCH ĐOÀN TỈNH BÌNH DƯƠNG\nBCH HUYỆN ĐOÀN DẦU TIẾNG", None, "CỘNG SẢN"]],
         ("BCH HUYỆN ĐOÀN DẦU TIẾNG", "A1")),
        # The next row, same column.
        ([["BCH ĐOÀN TỈNH BÌNH DƯƠNG", None, None], ["BCH THÀNH ĐOÀN THỦ DẦU MỘT", None, None]],
         ("BCH THÀNH ĐOÀN THỦ DẦU MỘT", "A2")),
        # A merge moved the unit line one column to the right, below an empty row.
        ([[None, "BCH ĐOÀN TỈNH BÌNH DƯƠNG", None], [None, None, None], [None, None, "Huyện đoàn Bàu Bàng"]],
         ("Huyện đoàn Bàu Bàng", "C3")),
        # No province line: any "BCH …" line above the table.
        ([["Tỉnh: Bình Dương", None], [None, "BCH THỊ ĐOÀN BẾN CÁT"]], ("BCH THỊ ĐOÀN BẾN CÁT", "B2")),
        # Nothing that names a unit.
        ([["BÁO CÁO", None]], ("", "")),
    ],
)
def test_unit_line_is_found_where_people_put_it(rows, expected, form):
    grid = [list(row) for row in rows] + [["Năm", "Tổng số đoàn viên"]]
    assert find_unit_line(grid, len(rows), form) == expected

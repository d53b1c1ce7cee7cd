"""Streamed worksheet rows read back exactly as xlsxwriter's own cells do."""

from __future__ import annotations

import io

import openpyxl
import pytest
import xlsxwriter
from hypothesis import given, settings
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook

from pipeline.outputs.streamsheet import StreamedWorksheet

Cell = tuple[object, str | None]  # (value, format name)


def build(rows: list[list[Cell]], streamed: bool, header: str = "Tiêu đề") -> bytes:
    """A header row, then `rows` from row 2 on: streamed, or written with xlsxwriter's plain methods."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                                        "strings_to_numbers": False})
    formats = {"bold": book.add_format({"bold": True, "border": 1}),
               "number": book.add_format({"num_format": "#,##0", "border": 1}),
               "percent": book.add_format({"num_format": "0.0%", "bg_color": "#FFE699"})}
    sheet = book.add_worksheet("Số liệu", worksheet_class=StreamedWorksheet if streamed else None)
    sheet.write_string(0, 0, header, formats["bold"])
    sheet.set_row(0, 30)
    if streamed:
        sheet.stream_from(1)
    for r, cells in enumerate(rows, start=1):
        resolved = [(value, formats.get(name) if name else None) for value, name in cells]
        if streamed:
            sheet.stream_row(r, 0, resolved)
            continue
        for c, (value, cell_format) in enumerate(resolved):
            if value is None:
                sheet.write_blank(r, c, None, cell_format)
            elif isinstance(value, str):
                sheet.write_string(r, c, value, cell_format)
            else:
                sheet.write_number(r, c, value, cell_format)
    sheet.autofilter(0, 0, max(len(rows), 1), 3)
    sheet.freeze_panes(1, 1)
    book.close()
    return buffer.getvalue()


def cells_of(data: bytes) -> list[tuple]:
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    return [(cell.coordinate, cell.value, cell.number_format, cell.font.b, cell.border.left.style,
             cell.fill.fgColor.rgb) for row in sheet.iter_rows() for cell in row]


ROWS: list[list[Cell]] = [
    [("U00001", "bold"), ("Huyện đoàn Dầu Tiếng", None), (2021, None), (1250, "number"), (0.925, "percent")],
    [("=HYPERLINK(\"http://x\")", None), ("a < b & c > d \"q\"", "bold"), (None, "number"), (-3, "number"),
     (12.5, None)],
    [("  khoảng trắng  ", None), ("dòng 1\ndòng 2", None), ("_x0041_ giữ nguyên", None), (10**16 + 1, None),
     (None, None)],
    [("Ký tự điều khiển \x01\x1f", None), ("𝔘 ngoài BMP", None), ("", None), (0, "number"), (1e-7, None)],
]


def test_streamed_rows_read_back_like_xlsxwriter_cells():
    assert cells_of(build(ROWS, streamed=True)) == cells_of(build(ROWS, streamed=False))


def test_streamed_sheet_keeps_header_row_options_and_sheet_settings():
    book = openpyxl.load_workbook(io.BytesIO(build(ROWS, streamed=True)))
    sheet = book.active
    assert sheet["A1"].value == "Tiêu đề" and sheet["A1"].font.b
    assert sheet.row_dimensions[1].height == 30
    assert sheet.auto_filter.ref == "A1:D5"
    assert sheet.freeze_panes == "B2"
    assert sheet.dimensions == "A1:E5"
    assert sheet["D2"].value == 1250 and sheet["D2"].number_format == "#,##0"
    # A text that looks like a formula stays text.
    assert sheet["A3"].value == '=HYPERLINK("http://x")' and sheet["A3"].data_type == "s"


def test_calamine_reads_streamed_rows():
    rows = CalamineWorkbook.from_filelike(io.BytesIO(build(ROWS, streamed=True))).get_sheet_by_index(0).to_python()
    assert rows[1][:5] == ["U00001", "Huyện đoàn Dầu Tiếng", 2021.0, 1250.0, 0.925]
    assert rows[2][3] == -3.0


def test_over_long_text_is_cut_to_excels_cell_limit():
    long_text = "x" * 40_000
    sheet = openpyxl.load_workbook(io.BytesIO(build([[(long_text, None)]], streamed=True))).active
    assert len(sheet["A2"].value) == 32_767


@pytest.mark.parametrize(
    ("writes", "message"),
    [
        ([(2, 0), (1, 0)], "top to bottom"),
        ([(1, 0), (1, 3), (1, 2)], "left to right"),
    ],
)
def test_out_of_order_cells_are_refused(writes, message):
    book = xlsxwriter.Workbook(io.BytesIO(), {"in_memory": True})
    sheet = book.add_worksheet("S", worksheet_class=StreamedWorksheet)
    sheet.stream_from(1)
    *earlier, last = writes
    for row, col in earlier:
        sheet.write_number(row, col, 1)
    with pytest.raises(ValueError, match=message):
        sheet.write_number(*last, 1)


def test_stream_must_start_below_written_cells_and_rows_take_only_an_early_height():
    book = xlsxwriter.Workbook(io.BytesIO(), {"in_memory": True})
    sheet = book.add_worksheet("S", worksheet_class=StreamedWorksheet)
    sheet.write_string(3, 0, "tiêu đề")
    with pytest.raises(ValueError):
        sheet.stream_from(3)
    sheet.stream_from(4)
    sheet.set_row(5, 40)
    sheet.write_string(5, 0, "x")
    with pytest.raises(ValueError):
        sheet.set_row(5, 20)  # its cells are written already
    with pytest.raises(ValueError):
        sheet.set_row(6, 20, book.add_format({"bold": True}))
    with pytest.raises(ValueError):
        sheet.stream_row(2, 0, [("x", None)])


def _links_merges_heights(streamed: bool) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    wrap = book.add_format({"text_wrap": True, "border": 1})
    sheet = book.add_worksheet("Tình trạng", worksheet_class=StreamedWorksheet if streamed else None)
    book.add_worksheet("Sai lệch")
    sheet.write_string(0, 0, "STT")
    if streamed:
        sheet.stream_from(1)
    sheet.set_row(1, 49.5)
    sheet.write_number(1, 0, 1)
    sheet.merge_range(1, 1, 1, 3, "Trả lại – cần sửa", wrap)
    sheet.write_url(1, 4, "internal:'Sai lệch'!A1", string="Xem sai lệch")
    sheet.write_number(2, 0, 2)
    book.close()
    return buffer.getvalue()


def test_links_merges_and_row_heights_on_streamed_rows():
    expected, streamed = (openpyxl.load_workbook(io.BytesIO(_links_merges_heights(s)))["Tình trạng"]
                          for s in (False, True))
    assert [str(r) for r in streamed.merged_cells.ranges] == [str(r) for r in expected.merged_cells.ranges] == ["B2:D2"]
    assert streamed.row_dimensions[2].height == expected.row_dimensions[2].height == 49.5
    assert streamed["E2"].hyperlink.location == expected["E2"].hyperlink.location == "'Sai lệch'!A1"
    assert streamed["E2"].value == "Xem sai lệch"
    assert [[c.value for c in row] for row in streamed.iter_rows()] == [[c.value for c in row] for row in expected.iter_rows()]


def test_sheet_with_no_streamed_rows_is_an_ordinary_sheet():
    data = build([], streamed=True)
    assert cells_of(data) == cells_of(build([], streamed=False))


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_VALUE = st.one_of(_TEXT, st.integers(-10**12, 10**12), st.floats(allow_nan=False, allow_infinity=False,
                                                                    min_value=-1e12, max_value=1e12), st.none())
_ROW = st.lists(st.tuples(_VALUE, st.sampled_from([None, "bold", "number", "percent"])), min_size=1, max_size=6)


@settings(max_examples=40, deadline=None)
@given(st.lists(_ROW, min_size=1, max_size=6))
def test_any_rows_read_back_like_xlsxwriter_cells(rows):
    assert cells_of(build(rows, streamed=True)) == cells_of(build(rows, streamed=False))


def test_a_streamed_row_can_be_continued_to_the_right_only():
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet("S", worksheet_class=StreamedWorksheet)
    sheet.stream_from(0)
    sheet.stream_row(0, 0, [("a", None), (1, None)])
    sheet.write_url(0, 2, "internal:'S'!A1", string="đây")
    sheet.stream_row(0, 3, [("d", None)])
    with pytest.raises(ValueError, match="left to right"):
        sheet.stream_row(0, 3, [("again", None)])
    sheet.stream_row(1, 0, [(2, None)])
    book.close()
    rows = openpyxl.load_workbook(io.BytesIO(buffer.getvalue())).active
    assert [[c.value for c in row] for row in rows.iter_rows()] == [["a", 1, "đây", "d"], [2, None, None, None]]
    assert rows["C1"].hyperlink.location == "'S'!A1"

"""Word documents (.docx, .odt, and .doc through LibreOffice) read as workbooks: one sheet per table.

Every document here is a real file: python-docx writes the .docx (with raw WordprocessingML spliced
in where python-docx has no API, such as a text box or a legacy merge), LibreOffice converts it to
.odt and .doc; only the hostile and corner-case .odt files are written by hand.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import docx
import pytest
from defusedxml import DefusedXmlException
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls, qn

from pipeline.read import word
from pipeline.read.fallback import SheetTooLarge
from pipeline.read.word import WordBook, WordTooLarge, convert_with_libreoffice, libreoffice_available

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
LIMITS = (2_000, 100_000, 1_024)  # max_rows, max_cells, max_columns: what the pipeline passes

PROVINCE = "BCH ĐOÀN TỈNH BÌNH DƯƠNG"
UNIT = "BCH HUYỆN ĐOÀN DẦU TIẾNG"
TITLE = ("KẾT QUẢ CÔNG TÁC PHÁT TRIỂN ĐẢNG TRONG HỌC SINH, SINH VIÊN, THANH NIÊN CÔNG NHÂN "
         "TỈNH BÌNH DƯƠNG")
PERIOD = "giai đoạn 2021 – 2023"

# The plan before the form: its own heading (the province's), its text, its signature table.
PLAN = [PROVINCE, "***", "KẾ HOẠCH", "Phát triển đảng trong học sinh, sinh viên, thanh niên công nhân",
        "I. MỤC ĐÍCH, YÊU CẦU", "Nâng cao chất lượng nguồn giới thiệu cho Đảng."]
PLAN_SIGNATURE = [["Nơi nhận:\n- Ban Thường vụ Tỉnh đoàn;\n- Lưu VP.", "TM. BAN THƯỜNG VỤ\nPHÓ BÍ THƯ\n\nTrần Thị B"]]
FORM_HEADING = [PROVINCE, UNIT, "***", TITLE, PERIOD, "(Kèm theo Kế hoạch số 45-KH/TĐTN)"]

FORM = [
    ["TT", "Năm", "Tổng số đoàn viên", "Số đoàn viên ưu tú", "Chỉ tiêu được giao\nkết nạp Đảng",
     "Số học sinh được kết nạp đảng", "Số sinh viên được kết nạp đảng", "Thanh niên công nhân được kết nạp Đảng", ""],
    ["", "", "", "", "", "", "", "Khu vực nhà nước", "Doanh nghiệp ngoài nhà nước"],
    ["1", "2021", "1.250", "120", "15", "3", "4", "2", "6"],
    ["2", "2022", "1.310", "135", "15", "5", "2", "1", "7"],
    ["3", "2023", "1.402", "140", "18", "6", "3", "2", "8"],
    ["Tổng cộng", "", "3.962", "395", "48", "14", "9", "5", "21"],
]
FORM_MERGES = [((0, c), (1, c)) for c in range(7)] + [((0, 7), (0, 8)), ((5, 0), (5, 1))]
UNIT_SIGNATURE = [["", "TM. BCH HUYỆN ĐOÀN\nBÍ THƯ"]]


def _fill(cell, text: str) -> None:
    """A cell's text, one paragraph per line (python-docx's `cell.text` would make line breaks)."""
    lines = text.split("\n")
    cell.text = lines[0]
    for line in lines[1:]:
        cell.add_paragraph(line)


def _table(document, rows: list[list[str]]):
    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    table.style = "Table Grid"
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            if text:
                _fill(table.cell(r, c), text)
    return table


def _save(document) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def build_plan() -> bytes:
    """The plan as a unit sends it back: plan text, its signature table, a page break, then the form's
    heading paragraphs, the form table, the unit's signature table."""
    document = docx.Document()
    for line in PLAN:
        document.add_paragraph(line)
    _fill_rows(_table(document, [["", ""]]), PLAN_SIGNATURE)
    document.add_page_break()
    for line in FORM_HEADING:
        document.add_paragraph(line)
    form = document.add_table(rows=len(FORM), cols=len(FORM[0]))
    form.style = "Table Grid"
    for c in range(7):  # every header but the workers' group spans the two header rows
        form.cell(0, c).merge(form.cell(1, c))
    form.cell(0, 7).merge(form.cell(0, 8))
    form.cell(5, 0).merge(form.cell(5, 1))
    _fill_rows(form, FORM)
    form.cell(3, 4).paragraphs[0].runs[0].text = " 15 "  # typed with spaces around: read stripped
    document.add_paragraph("Dầu Tiếng, ngày 10 tháng 02 năm 2024")
    _fill_rows(_table(document, [["", ""]]), UNIT_SIGNATURE)
    document.add_paragraph("")  # Word always ends a document with a paragraph (LibreOffice's .doc needs it)
    return _save(document)


def _fill_rows(table, rows: list[list[str]]) -> None:
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            if text:
                _fill(table.cell(r, c), text)


EXPECTED = {"Bảng 1": (PLAN_SIGNATURE, []), "Bảng 2": (FORM, FORM_MERGES), "Bảng 3": (UNIT_SIGNATURE, [])}
FORM_PREAMBLE = PLAN + ["Nơi nhận:", "- Ban Thường vụ Tỉnh đoàn;", "- Lưu VP.", "TM. BAN THƯỜNG VỤ", "PHÓ BÍ THƯ",
                        "Trần Thị B"] + FORM_HEADING


@pytest.fixture(scope="module")
def plan() -> bytes:
    return build_plan()


def tables(book: WordBook) -> dict[str, tuple[list, list]]:
    return {name: book.grid(name, *LIMITS) for name in book.sheet_names()}


def reading_order(grid: list[list[str]]) -> list[str]:
    return [text for row in grid for text in row if text]


def nearest_unit_line(lines: list[str]) -> str:
    """The first "BCH" line after the nearest province line."""
    last = max(i for i, line in enumerate(lines) if line == PROVINCE)
    return next(line for line in lines[last + 1:] if line.startswith("BCH"))


# ---------------------------------------------------------------- .docx

def test_every_table_is_a_visible_sheet_in_document_order(plan):
    book = WordBook(plan, "docx")
    assert book.sheet_names() == ["Bảng 1", "Bảng 2", "Bảng 3"]
    assert book.visible_sheets() == ["Bảng 1", "Bảng 2", "Bảng 3"]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_a_table_reads_as_excel_shows_it(plan, name):
    grid, merges = WordBook(plan, "docx").grid(name, *LIMITS)
    assert (grid, merges) == EXPECTED[name]


@pytest.mark.parametrize(("row", "col", "text"), [
    (0, 1, "Năm"), (1, 1, ""),                   # a vertical merge: the top cell holds the text
    (0, 7, "Thanh niên công nhân được kết nạp Đảng"), (0, 8, ""),  # a horizontal one: the left cell
    (2, 2, "1.250"), (3, 4, "15"), (4, 1, "2023"),                 # numbers stay the text typed
    (5, 0, "Tổng cộng"), (5, 1, ""),
])
def test_form_cells_sit_where_excel_puts_them(plan, row, col, text):
    grid, _ = WordBook(plan, "docx").grid("Bảng 2", *LIMITS)
    assert grid[row][col] == text and type(grid[row][col]) is str


@pytest.mark.parametrize(("name", "expected"), [
    ("Bảng 1", PLAN),
    ("Bảng 2", FORM_PREAMBLE[-word.PREAMBLE_PARAGRAPHS:]),
    ("Bảng 3", (FORM_PREAMBLE + [line for row in FORM for cell in row for line in cell.split("\n") if line]
                + ["Dầu Tiếng, ngày 10 tháng 02 năm 2024"])[-word.PREAMBLE_PARAGRAPHS:]),
])
def test_preamble_is_the_paragraphs_before_the_table(plan, name, expected):
    assert WordBook(plan, "docx").preamble(name) == expected


def test_the_unit_line_is_the_nearest_bch_line_after_the_province_line(plan):
    lines = WordBook(plan, "docx").preamble("Bảng 2")
    assert lines[-len(FORM_HEADING):] == FORM_HEADING
    assert nearest_unit_line(lines) == UNIT


@pytest.mark.parametrize(("paragraphs", "expected"), [
    (40, [f"Đoạn {i}" for i in range(11, 41)]),
    (30, [f"Đoạn {i}" for i in range(1, 31)]),
    (3, ["Đoạn 1", "Đoạn 2", "Đoạn 3"]),
    (0, []),
])
def test_preamble_keeps_the_last_thirty_paragraphs(paragraphs, expected):
    document = docx.Document()
    for i in range(1, paragraphs + 1):
        document.add_paragraph(f"Đoạn {i}")
        document.add_paragraph("   ")  # blank: never in a preamble
    _table(document, [["2021", "1"]])
    assert WordBook(_save(document), "docx").preamble("Bảng 1") == expected


def test_a_header_laid_out_as_a_table_is_in_the_preamble():
    """Headings are often a borderless two-column table: the unit line is then a cell paragraph."""
    document = docx.Document()
    _table(document, [[f"{PROVINCE}\n{UNIT}\n***", "ĐOÀN TNCS HỒ CHÍ MINH\nDầu Tiếng, ngày 10 tháng 02 năm 2024"]])
    document.add_paragraph(TITLE)
    _table(document, [["Năm", "Tổng số đoàn viên"], ["2021", "1.250"]])
    lines = WordBook(_save(document), "docx").preamble("Bảng 2")
    assert lines == [PROVINCE, UNIT, "***", "ĐOÀN TNCS HỒ CHÍ MINH", "Dầu Tiếng, ngày 10 tháng 02 năm 2024", TITLE]
    assert nearest_unit_line(lines) == UNIT


def test_nested_tables_follow_the_table_that_holds_them():
    document = docx.Document()
    outer = _table(document, [["Ngoài 1", "Ngoài 2"], ["", "Ngoài 4"]])
    holder = outer.cell(1, 0)
    _fill(holder, "Trước bảng con")
    inner = holder.add_table(rows=1, cols=2)
    _fill_rows(inner, [["Con 1", "Con 2"]])
    holder.add_paragraph("Sau bảng con")
    _table(document, [["Sau cùng"]])
    book = WordBook(_save(document), "docx")
    assert tables(book) == {
        # python-docx, like Word, puts an empty paragraph after a table in a cell
        "Bảng 1": ([["Ngoài 1", "Ngoài 2"], ["Trước bảng con\n\nSau bảng con", "Ngoài 4"]], []),
        "Bảng 2": ([["Con 1", "Con 2"]], []),
        "Bảng 3": ([["Sau cùng"]], []),
    }
    assert book.preamble("Bảng 2") == ["Ngoài 1", "Ngoài 2", "Trước bảng con"]
    assert book.preamble("Bảng 3") == ["Ngoài 1", "Ngoài 2", "Trước bảng con", "Con 1", "Con 2", "Sau bảng con",
                                       "Ngoài 4"]


def _append_body(document, xml: str) -> None:
    """Raw WordprocessingML at the end of the body (before its section properties)."""
    document.element.body.find(qn("w:sectPr")).addprevious(parse_xml(xml))


def _tc(text: str = "", props: str = "") -> str:
    runs = f"<w:r><w:t>{text}</w:t></w:r>" if text else ""
    return f"<w:tc>{f'<w:tcPr>{props}</w:tcPr>' if props else ''}<w:p>{runs}</w:p></w:tc>"


MERGE_TABLE = (
    f"<w:tbl {nsdecls('w')}><w:tblGrid>" + "<w:gridCol w:w='1000'/>" * 4 + "</w:tblGrid>"
    # gridBefore leaves the first column empty; gridSpan widens a cell
    "<w:tr><w:trPr><w:gridBefore w:val='1'/></w:trPr>" + _tc("B") + _tc("CD", "<w:gridSpan w:val='2'/>")
    + "</w:tr>"
    # Word 97's hMerge; a vMerge continuation under a cell of another span is a cell of its own
    "<w:tr>" + _tc("AB", "<w:hMerge w:val='restart'/>") + _tc("", "<w:hMerge/>") + _tc("lẻ", "<w:vMerge/>")
    + _tc("D") + "</w:tr>"
    "<w:tr>" + _tc("", "<w:gridSpan w:val='2'/><w:vMerge w:val='continue'/>") + _tc("E")
    + _tc("F", "<w:vMerge w:val='restart'/>") + "</w:tr>"
    # a continuation's own text is not shown; a tracked change's old properties do not count
    "<w:tr>" + _tc("G", "<w:gridSpan w:val='3'/><w:tcPrChange w:id='1' w:author='A'><w:tcPr>"
                        "<w:gridSpan w:val='1'/></w:tcPr></w:tcPrChange>")
    + _tc("bỏ qua", "<w:vMerge/>") + "</w:tr>"
    # a row deleted under change tracking
    "<w:tr><w:trPr><w:del w:id='2' w:author='A'/></w:trPr>" + _tc("xoá") * 4 + "</w:tr>"
    "</w:tbl>"
)


def test_grid_spans_and_vertical_merges_are_laid_out_on_the_table_grid():
    document = docx.Document()
    _append_body(document, MERGE_TABLE)
    assert WordBook(_save(document), "docx").grid("Bảng 1", *LIMITS) == (
        [["", "B", "CD", ""], ["AB", "", "lẻ", "D"], ["", "", "E", "F"], ["G", "", "", ""]],
        [((0, 2), (0, 3)), ((1, 0), (2, 1)), ((2, 3), (3, 3)), ((3, 0), (3, 2))],
    )


W_DRAWING = ("xmlns:wp='http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing' "
             "xmlns:a='http://schemas.openxmlformats.org/drawingml/2006/main' "
             "xmlns:wps='http://schemas.microsoft.com/office/word/2010/wordprocessingShape' "
             "xmlns:mc='http://schemas.openxmlformats.org/markup-compatibility/2006' "
             "xmlns:v='urn:schemas-microsoft-com:vml' "
             "xmlns:m='http://schemas.openxmlformats.org/officeDocument/2006/math'")
TEXT_BOX = (
    "<w:r><mc:AlternateContent><mc:Choice Requires='wps'><w:drawing><wp:anchor><a:graphic><a:graphicData>"
    "<wps:wsp><wps:txbx><w:txbxContent><w:p><w:r><w:t>BCH hộp chữ</w:t></w:r></w:p>"
    f"<w:tbl>{_tc('bảng trong hộp')}</w:tbl></w:txbxContent></wps:txbx></wps:wsp>"
    "</a:graphicData></a:graphic></wp:anchor></w:drawing></mc:Choice>"
    "<mc:Fallback><w:pict><v:shape><v:textbox><w:txbxContent><w:p><w:r><w:t>BCH hộp chữ</w:t></w:r></w:p>"
    "</w:txbxContent></v:textbox></v:shape></w:pict></mc:Fallback></mc:AlternateContent></w:r>"
)
TEXT_CELLS = [
    # tab and line break within a paragraph
    ("<w:r><w:t>Số</w:t><w:tab/><w:t>liệu</w:t><w:br/><w:t>mới</w:t></w:r>", "Số\tliệu\nmới"),
    # tracked changes: deleted text gone, inserted text kept
    ("<w:r><w:t>1.</w:t></w:r><w:del w:id='3' w:author='A'><w:r><w:delText>000</w:delText></w:r></w:del>"
     "<w:ins w:id='4' w:author='A'><w:r><w:t>250</w:t></w:r></w:ins>", "1.250"),
    # hidden text
    ("<w:r><w:rPr><w:vanish/></w:rPr><w:t>ẩn</w:t></w:r><w:r><w:rPr><w:vanish w:val='0'/></w:rPr><w:t>15</w:t></w:r>",
     "15"),
    # a field: its result, not its instruction
    ("<w:r><w:fldChar w:fldCharType='begin'/></w:r><w:r><w:instrText> =2+3 </w:instrText></w:r>"
     "<w:r><w:fldChar w:fldCharType='separate'/></w:r><w:r><w:t>5</w:t></w:r>"
     "<w:r><w:fldChar w:fldCharType='end'/></w:r>", "5"),
    # a text box anchored in the cell, with a table inside it: neither is the cell's
    (TEXT_BOX + "<w:r><w:t>7</w:t></w:r>", "7"),
    # a content control, a hyperlink, a page break, a non-breaking hyphen, an equation
    ("<w:sdt><w:sdtPr><w:alias w:val='Số'/></w:sdtPr><w:sdtContent><w:r><w:t>4</w:t></w:r></w:sdtContent></w:sdt>"
     "<w:hyperlink><w:r><w:t>2</w:t></w:r></w:hyperlink><w:r><w:br w:type='page'/><w:t>0</w:t>"
     "<w:noBreakHyphen/><w:t>1</w:t></w:r><m:oMath><m:r><m:t>=x</m:t></m:r></m:oMath>", "420-1=x"),
]


def test_cell_text_is_the_text_word_shows():
    cells = "".join(f"<w:tc><w:p>{runs}</w:p></w:tc>" for runs, _ in TEXT_CELLS)
    document = docx.Document()
    _append_body(document, f"<w:p {nsdecls('w')} {W_DRAWING}>{TEXT_BOX}<w:r><w:t>Trước bảng</w:t></w:r></w:p>")
    _append_body(document, f"<w:tbl {nsdecls('w')} {W_DRAWING}><w:tr>{cells}</w:tr></w:tbl>")
    book = WordBook(_save(document), "docx")
    assert tables(book) == {"Bảng 1": ([[text for _, text in TEXT_CELLS]], [])}
    assert book.preamble("Bảng 1") == ["Trước bảng"]


def test_a_table_inside_a_content_control_is_still_a_table():
    document = docx.Document()
    _append_body(document, f"<w:sdt {nsdecls('w')}><w:sdtPr/><w:sdtContent><w:tbl><w:tr>{_tc('2021')}"
                           f"<w:sdt><w:sdtContent>{_tc('1.250')}</w:sdtContent></w:sdt></w:tr></w:tbl>"
                           "</w:sdtContent></w:sdt>")
    assert tables(WordBook(_save(document), "docx")) == {"Bảng 1": ([["2021", "1.250"]], [])}


def _rewrite(data: bytes, part: str, change) -> bytes:
    """The same package with one part's XML text changed."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == part:
                content = change(content.decode("utf-8")).encode("utf-8")
            target.writestr(info, content)
    return out.getvalue()


def test_strict_ooxml_reads_like_transitional(plan):
    strict = _rewrite(plan, "word/document.xml", lambda xml: xml.replace(
        "http://schemas.openxmlformats.org/wordprocessingml/2006/main", "http://purl.oclc.org/ooxml/wordprocessingml/main"))
    assert tables(WordBook(strict, "docx")) == EXPECTED


def test_the_main_part_is_found_through_the_package_relationships(plan):
    moved = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(plan)) as source, zipfile.ZipFile(moved, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            name = "word/main.xml" if info.filename == "word/document.xml" else info.filename
            if info.filename == "_rels/.rels":
                content = content.replace(b"word/document.xml", b"/word/main.xml")
            target.writestr(name, content)
    assert tables(WordBook(moved.getvalue(), "docx")) == EXPECTED


# ---------------------------------------------------------------- limits and hostile input

@pytest.mark.parametrize(("limits", "extent"), [
    ((2_000, 53, 1_024), (6, 9)),   # more cells than allowed
    ((2_000, 100_000, 8), (6, 9)),  # more columns than allowed
])
def test_a_table_beyond_the_limits_is_refused(plan, limits, extent):
    with pytest.raises(SheetTooLarge) as refused:
        WordBook(plan, "docx").grid("Bảng 2", *limits)
    assert (refused.value.height, refused.value.width) == extent


def test_a_huge_span_is_refused_without_laying_it_out():
    document = docx.Document()
    wide = _tc("x", "<w:gridSpan w:val='2000000000'/>")
    _append_body(document, f"<w:tbl {nsdecls('w')}><w:tr><w:trPr><w:gridBefore w:val='999999999'/></w:trPr>"
                           f"{wide}</w:tr></w:tbl>")
    with pytest.raises(SheetTooLarge) as refused:
        WordBook(_save(document), "docx").grid("Bảng 1", *LIMITS)
    assert (refused.value.height, refused.value.width) == (1, 2_999_999_999)


@pytest.mark.parametrize(("max_rows", "rows", "merges"), [
    (1, FORM[:1], FORM_MERGES[:8]),
    (2, FORM[:2], FORM_MERGES[:8]),
    (5, FORM[:5], FORM_MERGES[:8]),
    (6, FORM, FORM_MERGES),
])
def test_rows_stop_at_max_rows(plan, max_rows, rows, merges):
    assert WordBook(plan, "docx").grid("Bảng 2", max_rows, 100_000, 1_024) == (rows, merges)


@pytest.mark.parametrize(("count", "refused"), [(200, False), (201, True)])
def test_more_than_two_hundred_tables_are_refused(count, refused):
    document = docx.Document()
    for i in range(count):
        _append_body(document, f"<w:tbl {nsdecls('w')}><w:tr>{_tc(str(i))}</w:tr></w:tbl>")
    data = _save(document)
    if refused:
        with pytest.raises(WordTooLarge):
            WordBook(data, "docx")
    else:
        assert len(WordBook(data, "docx").sheet_names()) == count


@pytest.mark.parametrize("kind", ["docx", "odt"])
def test_a_content_part_over_the_limit_is_refused(plan, monkeypatch, kind):
    data = plan if kind == "docx" else make_odt(ODT_BODY)
    part = {"docx": "word/document.xml", "odt": "content.xml"}[kind]
    size = zipfile.ZipFile(io.BytesIO(data)).getinfo(part).file_size
    monkeypatch.setattr(word, "MAX_PART_BYTES", size)
    WordBook(data, kind)
    monkeypatch.setattr(word, "MAX_PART_BYTES", size - 1)
    with pytest.raises(WordTooLarge):
        WordBook(data, kind)


@pytest.mark.parametrize("doctype", [
    '<!DOCTYPE w:document [<!ENTITY unit "BCH giả">]>',
    '<!DOCTYPE w:document [<!ENTITY unit SYSTEM "file:///etc/hostname">]>',
    '<!DOCTYPE w:document SYSTEM "http://127.0.0.1:9/word.dtd">',
])
def test_a_dtd_or_entity_is_never_followed(plan, doctype):
    hostile = _rewrite(plan, "word/document.xml",
                       lambda xml: xml.replace("?>", "?>" + doctype, 1).replace(UNIT, "&unit;" if "ENTITY" in doctype
                                                                                 else UNIT))
    with pytest.raises(DefusedXmlException):
        WordBook(hostile, "docx")


def test_an_unknown_kind_is_a_programming_error(plan):
    with pytest.raises(ValueError):
        WordBook(plan, "xlsx")


# ---------------------------------------------------------------- .odt written by hand

ODT_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
          'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
          'xmlns:dc="http://purl.org/dc/elements/1.1/"')


def make_odt(body: str) -> bytes:
    content = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ODT_NS} office:version="1.3">'
               f"<office:body><office:text>{body}</office:text></office:body></office:document-content>")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        archive.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
    return out.getvalue()


ODT_BODY = (
    "<text:tracked-changes><text:changed-region text:id='c1'><text:deletion><office:change-info>"
    "<dc:creator>A</dc:creator></office:change-info><text:p>BCH đã xoá</text:p></text:deletion>"
    "</text:changed-region></text:tracked-changes>"
    f"<text:p>{PROVINCE}<office:annotation><text:p>ghi chú</text:p></office:annotation></text:p>"
    "<text:p><draw:frame><draw:text-box><text:p>hộp chữ</text:p><table:table><table:table-row><table:table-cell>"
    "<text:p>bảng trong hộp</text:p></table:table-cell></table:table-row></table:table></draw:text-box></draw:frame>"
    "BCH <text:span>HUYỆN</text:span><text:s/>ĐOÀN<text:s text:c='2'/>DẦU TIẾNG</text:p>"
    "<table:table table:name='Bảng tính'><table:table-column table:number-columns-repeated='3'/>"
    "<table:table-header-rows><table:table-row>"
    "<table:table-cell table:number-columns-spanned='2'><text:p>Năm</text:p></table:table-cell>"
    "<table:covered-table-cell/><table:table-cell><text:p>Số</text:p><text:p>liệu</text:p></table:table-cell>"
    "</table:table-row></table:table-header-rows>"
    "<table:table-row table:number-rows-repeated='2'>"
    "<table:table-cell table:number-columns-repeated='2'><text:p>0</text:p></table:table-cell>"
    "<table:table-cell office:value-type='float' office:value='1250'><text:p>1.250</text:p></table:table-cell>"
    "</table:table-row>"
    "<table:table-row><table:table-cell><text:p>x<text:tab/>y<text:line-break/>z<text:note text:note-class='footnote'>"
    "<text:note-citation>1</text:note-citation><text:note-body><text:p>chú thích</text:p></text:note-body>"
    "</text:note></text:p></table:table-cell>"
    "<table:table-cell table:number-rows-spanned='2'><text:list><text:list-item><text:p>mục</text:p>"
    "</text:list-item></text:list></table:table-cell><table:table-cell/></table:table-row>"
    "<table:table-row><table:table-cell/><table:covered-table-cell/><table:table-cell><table:table>"
    "<table:table-row><table:table-cell><text:p>lồng</text:p></table:table-cell></table:table-row></table:table>"
    "</table:table-cell></table:table-row>"
    "</table:table>"
)


def test_odt_tables_repeats_covered_cells_and_text():
    book = WordBook(make_odt(ODT_BODY), "odt")
    assert tables(book) == {
        "Bảng 1": ([["Năm", "", "Số\nliệu"], ["0", "0", "1.250"], ["0", "0", "1.250"], ["x\ty\nz", "mục", ""],
                    ["", "", ""]], [((0, 0), (0, 1)), ((3, 1), (4, 1))]),
        "Bảng 2": ([["lồng"]], []),
    }
    assert book.preamble("Bảng 1") == [PROVINCE, "BCH HUYỆN ĐOÀN  DẦU TIẾNG"]
    assert book.preamble("Bảng 2") == [PROVINCE, "BCH HUYỆN ĐOÀN  DẦU TIẾNG", "Năm", "Số", "liệu", "0", "1.250",
                                       "x\ty\nz", "mục"]


@pytest.mark.parametrize(("rows", "limits", "extent"), [
    ("<table:table-row table:number-rows-repeated='1000000'><table:table-cell "
     "table:number-columns-repeated='1000000000'><text:p>0</text:p></table:table-cell></table:table-row>",
     LIMITS, (1_000_000, 1_000_000_000)),
    ("<table:table-row table:number-rows-repeated='100001'><table:table-cell><text:p>0</text:p></table:table-cell>"
     "</table:table-row>", LIMITS, (100_001, 1)),
])
def test_odt_repeats_are_counted_not_laid_out(rows, limits, extent):
    book = WordBook(make_odt(f"<table:table>{rows}</table:table>"), "odt")
    with pytest.raises(SheetTooLarge) as refused:
        book.grid("Bảng 1", *limits)
    assert (refused.value.height, refused.value.width) == extent


def test_odt_rows_stop_at_max_rows():
    book = WordBook(make_odt("<table:table><table:table-row table:number-rows-repeated='5000'><table:table-cell "
                             "table:number-rows-spanned='2'><text:p>7</text:p></table:table-cell></table:table-row>"
                             "</table:table>"), "odt")
    assert book.grid("Bảng 1", 3, 100_000, 1_024) == ([["7"], ["7"], ["7"]], [((0, 0), (1, 0)), ((1, 0), (2, 0)),
                                                                              ((2, 0), (3, 0))])


def test_odt_spans_never_reach_past_the_table():
    book = WordBook(make_odt("<table:table><table:table-row><table:table-cell table:number-rows-spanned='9' "
                             "table:number-columns-spanned='9'><text:p>A</text:p></table:table-cell>"
                             "<table:table-cell/></table:table-row></table:table>"), "odt")
    assert book.grid("Bảng 1", *LIMITS) == ([["A", ""]], [((0, 0), (0, 1))])


def test_odt_dtd_is_refused():
    data = make_odt("<text:p>x</text:p>")
    hostile = _rewrite(data, "content.xml", lambda xml: xml.replace("?>", '?><!DOCTYPE x [<!ENTITY a "b">]>', 1))
    with pytest.raises(DefusedXmlException):
        WordBook(hostile, "odt")


# ---------------------------------------------------------------- LibreOffice

@pytest.fixture(scope="module")
def soffice() -> str:
    if SOFFICE is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    return SOFFICE


def soffice_convert(program: str, source: Path, target: str) -> bytes:
    """What a unit's LibreOffice writes: `soffice --convert-to` in a throwaway profile."""
    work = Path(tempfile.mkdtemp(prefix="lo-test-"))
    try:
        subprocess.run([program, f"-env:UserInstallation={(work / 'profile').as_uri()}", "--headless", "--norestore",
                        "--convert-to", target, "--outdir", str(work), str(source)],
                       capture_output=True, timeout=180, check=False)
        return (work / f"{source.stem}.{target}").read_bytes()
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def converted(soffice, plan, tmp_path_factory) -> dict[str, bytes]:
    source = tmp_path_factory.mktemp("plan") / "ke_hoach.docx"
    source.write_bytes(plan)
    return {target: soffice_convert(soffice, source, target) for target in ("odt", "doc")}


def processes_mentioning(text: str, settle: float = 5.0) -> list[str]:
    """Command lines of live processes that mention `text` (Linux: /proc), after giving processes just
    sent SIGKILL up to `settle` seconds to finish exiting (a zombie has no command line)."""
    deadline = time.monotonic() + settle
    while (found := _mentioning(text)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def _mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline:
                found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


@pytest.fixture
def lo_temp(tmp_path, monkeypatch) -> Path:
    """convert_with_libreoffice's temporary folders go here, so the test can look for what is left."""
    folder = tmp_path / "lo"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_odt_written_by_libreoffice_reads_the_same(converted, plan):
    docx_book, odt_book = WordBook(plan, "docx"), WordBook(converted["odt"], "odt")
    assert odt_book.sheet_names() == ["Bảng 1", "Bảng 2", "Bảng 3"]
    assert tables(odt_book) == tables(docx_book) == EXPECTED
    assert odt_book.preamble("Bảng 2") == docx_book.preamble("Bảng 2")
    assert nearest_unit_line(odt_book.preamble("Bảng 2")) == UNIT


def test_doc_is_converted_to_a_docx_that_reads_the_same(converted, plan, lo_temp):
    assert converted["doc"][:8] == bytes.fromhex("d0cf11e0a1b11ae1")  # a real Word 97 file
    result = convert_with_libreoffice(converted["doc"], ".doc")
    assert result is not None and zipfile.ZipFile(io.BytesIO(result)).getinfo("word/document.xml")
    book = WordBook(result, "docx")
    assert book.sheet_names() == ["Bảng 1", "Bảng 2", "Bảng 3"]
    assert tables(book) == tables(WordBook(plan, "docx")) == EXPECTED
    assert nearest_unit_line(book.preamble("Bảng 2")) == UNIT
    assert list(lo_temp.iterdir()) == []
    if sys.platform.startswith("linux"):
        assert processes_mentioning(str(lo_temp)) == []


@pytest.mark.parametrize("suffix", [".rtf", "../../x y.RTF", ""])
def test_rtf_converts_whatever_the_suffix(soffice, plan, tmp_path, suffix):
    source = tmp_path / "ke_hoach.docx"
    source.write_bytes(plan)
    rtf = soffice_convert(soffice, source, "rtf")
    assert rtf.startswith(b"{\\rtf")
    result = convert_with_libreoffice(rtf, suffix)
    assert result is not None
    book = WordBook(result, "docx")
    assert book.sheet_names() == ["Bảng 1", "Bảng 2", "Bảng 3"]
    # RTF keeps cell edges, not a column grid: LibreOffice may split a grid column on the way back,
    # so what must survive is every text in reading order (and the merges the grid still needs)
    assert reading_order(book.grid("Bảng 2", *LIMITS)[0]) == reading_order(FORM)
    assert nearest_unit_line(book.preamble("Bảng 2")) == UNIT


def test_what_libreoffice_cannot_read_converts_to_nothing(soffice, lo_temp):
    assert convert_with_libreoffice(b"\x00\x01 not a document", ".doc") is None
    assert list(lo_temp.iterdir()) == []


@pytest.mark.parametrize("timeout", [0.01, 0.5])
def test_a_conversion_past_its_time_limit_is_killed(soffice, converted, lo_temp, timeout):
    started = time.monotonic()
    assert convert_with_libreoffice(converted["doc"], ".doc", timeout=timeout) is None
    assert time.monotonic() - started < timeout + 2
    assert list(lo_temp.iterdir()) == []
    if sys.platform.startswith("linux"):
        assert processes_mentioning(str(lo_temp)) == []


def test_libreoffice_is_found_when_installed(soffice):
    assert libreoffice_available() is True


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="LibreOffice's default install places are looked at")
def test_without_libreoffice_nothing_is_converted(monkeypatch):
    monkeypatch.setattr(word.shutil, "which", lambda name: None)
    assert libreoffice_available() is False
    assert convert_with_libreoffice(b"{\\rtf1 x}", ".rtf") is None


@pytest.mark.parametrize("target", ["docx; rm -rf /", "", "../docx", "DOCX:x\ny"])
def test_a_malformed_target_is_a_programming_error(target):
    with pytest.raises(ValueError):
        convert_with_libreoffice(b"", ".doc", target)


def test_the_throwaway_profile_is_a_file_uri(monkeypatch, lo_temp):
    seen: list[list[str]] = []
    monkeypatch.setattr(word, "_soffice", lambda: "soffice")
    monkeypatch.setattr(word.parallel, "run_program", lambda argv, cwd, env, timeout: seen.append(argv))
    assert convert_with_libreoffice(b"x", ".doc", "odt", timeout=5) is None  # run_program returned None
    (argv,) = seen
    profile = next(a for a in argv if a.startswith("-env:UserInstallation="))
    assert profile.startswith("-env:UserInstallation=file:///") and profile.endswith("/profile")
    assert argv[argv.index("--convert-to") + 1] == "odt"
    assert Path(argv[-1]).name == "input.doc"
    assert "--headless" in argv and "--norestore" in argv

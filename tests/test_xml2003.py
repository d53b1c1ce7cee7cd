"""The Excel 2003 XML Spreadsheet reader (pipeline.read.xml2003).

A form-like workbook is written with openpyxl, saved as .xlsx, and converted by LibreOffice to
SpreadsheetML 2003: the reader must give of the .xml exactly the grids and merges python-calamine gives
of the .xlsx. What LibreOffice never writes (Excel's explicit ss:Index numbering, sheet visibility, rich
text, error cells, DTDs, UTF-16) is checked on hand-written documents.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import openpyxl
import pytest
from defusedxml import DefusedXmlException
from openpyxl.utils import get_column_letter

from pipeline.read.fallback import CalamineBook, FormulaWithoutValue, SheetTooLarge
from pipeline.read.screen import screen
from pipeline.read.xml2003 import Xml2003Book, looks_like_xml2003

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
NODE = shutil.which("node")
LIMITS = {"max_rows": 2_000, "max_cells": 2_000_000, "max_columns": 1_024}


def typed(grid):
    """A grid with each value's type beside it: 1250.0 and True are == to 1250 and 1, not the same cell."""
    return [[(type(value).__name__, value) for value in row] for row in grid]


# ---------------------------------------------------------------- files LibreOffice writes


def form_workbook() -> openpyxl.Workbook:
    """A report form as units fill it: title rows, a two-row header with merged cells (and one blank
    sub-header, which makes LibreOffice write an ss:Index after a vertical merge), years 2021–2023 with
    numbers, a number typed as text, a note merged down three rows, dates, and a hidden sheet."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Báo cáo"
    sheet["A1"] = "BÁO CÁO KẾT QUẢ PHÁT TRIỂN ĐẢNG VIÊN NĂM 2021–2023"
    sheet.merge_cells("A1:G1")
    sheet["A2"] = "Đơn vị: Đoàn xã Tân Phú\nHuyện Châu Thành"
    sheet["A4"] = "Năm"
    sheet.merge_cells("A4:A5")
    sheet["B4"] = "Kết nạp đảng viên mới"
    sheet.merge_cells("B4:D4")
    sheet["B5"] = "Tổng số"
    sheet["D5"] = "Trong đó nữ"  # C5 stays blank
    sheet["E4"] = "Đoàn viên ưu tú"
    sheet.merge_cells("E4:E5")
    sheet["F4"] = "Ghi chú"
    sheet.merge_cells("F4:G5")
    for row, (year, total, women, youth) in enumerate([(2021, 12, 5, 30.5), (2022, 15, 7, 41), (2023, 9, 4, 28)], 6):
        sheet.cell(row, 1, year)
        sheet.cell(row, 2, total)
        sheet.cell(row, 4, women)
        sheet.cell(row, 5, youth)
    sheet["C6"] = "1.250"  # a number typed as text stays text
    sheet["F6"] = "Số liệu đã rà soát"
    sheet.merge_cells("F6:F8")
    sheet["H7"] = "đợt 2"  # past the merge from above and a blank: LibreOffice numbers it as column 7
    sheet["A10"] = "Ngày lập"
    sheet["B10"] = dt.date(2023, 12, 15)
    sheet["C10"] = dt.datetime(2023, 12, 15, 9, 45)
    sheet["E10"] = 1250
    sheet["H12"] = "Người lập biểu"
    hidden = book.create_sheet("Danh mục")
    hidden["A1"] = "Mã đơn vị"
    hidden["B2"] = 7
    hidden.sheet_state = "hidden"
    for ws in book.worksheets:
        _break_column_runs(ws)
    return book


def _break_column_runs(sheet) -> None:
    """LibreOffice 7.4+ sheets have 16384 columns, and its SpreadsheetML XSLT expands a run of identical
    columns by recursion, one level per column: past libxslt's depth of 3000 the export fails ("Please
    verify input parameters"), for any plain sheet. A column of its own width every 1000 breaks the runs.
    Widths are nothing calamine or the reader look at."""
    for column in range(1_000, 16_385, 1_000):
        sheet.column_dimensions[get_column_letter(column)].width = 12


def convert_to_xml2003(source: Path, outdir: Path) -> Path:
    if SOFFICE is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    profile = Path(tempfile.mkdtemp(prefix="lo_profile_xml2003_"))
    try:
        result = subprocess.run(
            [SOFFICE, "--headless", "--norestore", f"-env:UserInstallation={profile.as_uri()}",
             "--convert-to", "xml:MS Excel 2003 XML", "--outdir", str(outdir), str(source)],
            capture_output=True, text=True, timeout=600, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    produced = outdir / f"{source.stem}.xml"
    if not produced.exists():
        pytest.fail(f"soffice wrote no {produced.name} (exit {result.returncode}): {result.stderr[-2000:]}")
    return produced


@pytest.fixture(scope="module")
def libreoffice_pair(tmp_path_factory):
    """(calamine's book of the .xlsx, the reader's book of LibreOffice's .xml of it, the .xml bytes)."""
    folder = tmp_path_factory.mktemp("xml2003")
    source = folder / "bao_cao.xlsx"
    form_workbook().save(source)
    xml = convert_to_xml2003(source, folder)
    data = xml.read_bytes()
    xlsx = source.read_bytes()
    return CalamineBook(io.BytesIO(xlsx), "xlsx", xlsx), Xml2003Book(data), data


@pytest.mark.parametrize("sheet", ["Báo cáo", "Danh mục"])
def test_libreoffice_file_reads_as_calamine_reads_the_xlsx(libreoffice_pair, sheet):
    calamine, book, _ = libreoffice_pair
    expected_grid, expected_merges = calamine.grid(sheet, **LIMITS)
    grid, merges = book.grid(sheet, **LIMITS)
    assert typed(grid) == typed(expected_grid)
    assert sorted(merges) == sorted(expected_merges)


def test_libreoffice_file_form_sheet_exact(libreoffice_pair):
    """The values themselves, so that the comparison above cannot pass on two equally wrong readings."""
    _, book, _ = libreoffice_pair
    grid, merges = book.grid("Báo cáo", **LIMITS)
    assert len(grid) == 12 and {len(row) for row in grid} == {8}
    assert grid[3][:6] == ["Năm", "Kết nạp đảng viên mới", "", "", "Đoàn viên ưu tú", "Ghi chú"]
    assert grid[4][:4] == ["", "Tổng số", "", "Trong đó nữ"]
    assert typed([grid[5][:6]]) == typed([[2021.0, 12.0, "1.250", 5.0, 30.5, "Số liệu đã rà soát"]])
    assert grid[6] == [2022.0, 15.0, "", 7.0, 41.0, "", "", "đợt 2"]
    assert grid[1][0] == "Đơn vị: Đoàn xã Tân Phú\nHuyện Châu Thành"
    assert grid[9][:5] == ["Ngày lập", dt.date(2023, 12, 15), dt.datetime(2023, 12, 15, 9, 45), "", 1250.0]
    assert grid[11][7] == "Người lập biểu"
    assert sorted(merges) == [((0, 0), (0, 6)), ((3, 0), (4, 0)), ((3, 1), (3, 3)), ((3, 4), (4, 4)),
                              ((3, 5), (4, 6)), ((5, 5), (7, 5))]


def test_libreoffice_file_sheets(libreoffice_pair):
    calamine, book, data = libreoffice_pair
    assert looks_like_xml2003(data[:4096])
    assert book.sheet_names() == calamine.sheet_names() == ["Báo cáo", "Danh mục"]
    # LibreOffice's export writes no <Visible> (its XSLT leaves WorksheetOptions empty): the hidden sheet
    # comes out visible, so visibility is checked on Excel's own markup below.
    assert b"SheetHidden" not in data
    assert calamine.visible_sheets() == ["Báo cáo"]


# ---------------------------------------------------------------- hand-written documents

NAMESPACES = ('xmlns="urn:schemas-microsoft-com:office:spreadsheet" '
              'xmlns:o="urn:schemas-microsoft-com:office:office" '
              'xmlns:x="urn:schemas-microsoft-com:office:excel" '
              'xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet" '
              'xmlns:html="http://www.w3.org/TR/REC-html40"')


def document(*sheets: str, prolog: str = '<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n',
             root: str = f"<Workbook {NAMESPACES}>") -> str:
    return prolog + root + "".join(sheets) + "</Workbook>"


def worksheet(name: str, rows: str, visible: str = "") -> str:
    options = ('<WorksheetOptions xmlns="urn:schemas-microsoft-com:office:excel">'
               f"<Visible>{visible}</Visible></WorksheetOptions>") if visible else ""
    return f'<Worksheet ss:Name="{name}"><Table>{rows}</Table>{options}</Worksheet>'


def cell(value: str, kind: str = "String", attributes: str = "") -> str:
    return f'<Cell{attributes}><Data ss:Type="{kind}">{value}</Data></Cell>'


def read(rows: str, **limits) -> tuple[list, list]:
    return Xml2003Book(document(worksheet("S", rows)).encode("utf-8")).grid("S", **{**LIMITS, **limits})


# An Excel-saved workbook as Excel writes it: pretty-printed, styles, counts, options, a hidden sheet.
EXCEL_SAVED = """<?xml version="1.0"?>
<?mso-application progid="Excel.Sheet"?>
<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"
 xmlns:o="urn:schemas-microsoft-com:office:office"
 xmlns:x="urn:schemas-microsoft-com:office:excel"
 xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet"
 xmlns:html="http://www.w3.org/TR/REC-html40">
 <DocumentProperties xmlns="urn:schemas-microsoft-com:office:office">
  <Author>Đoàn xã</Author>
 </DocumentProperties>
 <Styles>
  <Style ss:ID="Default" ss:Name="Normal"><Alignment ss:Vertical="Bottom"/></Style>
  <Style ss:ID="s62"><Alignment ss:Horizontal="Center" ss:Vertical="Center" ss:WrapText="1"/></Style>
 </Styles>
 <Worksheet ss:Name="Báo cáo">
  <Table ss:ExpandedColumnCount="5" ss:ExpandedRowCount="6" x:FullColumns="1" x:FullRows="1">
   <Column ss:Width="60"/>
   <Row>
    <Cell ss:MergeAcross="4" ss:StyleID="s62"><Data ss:Type="String">BÁO CÁO</Data></Cell>
   </Row>
   <Row ss:Index="3">
    <Cell ss:MergeDown="1" ss:StyleID="s62"><Data ss:Type="String">Năm</Data></Cell>
    <Cell ss:MergeAcross="2" ss:StyleID="s62"><Data ss:Type="String">Kết nạp</Data></Cell>
    <Cell ss:MergeDown="1"><Data ss:Type="String">Ghi chú</Data></Cell>
   </Row>
   <Row>
    <Cell ss:Index="2"><Data ss:Type="String">Tổng số</Data></Cell>
    <Cell ss:Index="4"><Data ss:Type="String">Nữ</Data></Cell>
   </Row>
   <Row>
    <Cell><Data ss:Type="Number">2021</Data></Cell>
    <Cell><Data ss:Type="Number">12</Data></Cell>
    <Cell ss:Formula="=RC[-1]*2"><Data ss:Type="Number">24</Data></Cell>
    <Cell><Data ss:Type="Number">5</Data><Comment ss:Author="A"><ss:Data
     xmlns="http://www.w3.org/TR/REC-html40"><B>not the value</B></ss:Data></Comment></Cell>
    <Cell><Data ss:Type="String">1.250</Data></Cell>
   </Row>
  </Table>
  <WorksheetOptions xmlns="urn:schemas-microsoft-com:office:excel">
   <Selected/>
   <ProtectObjects>False</ProtectObjects>
  </WorksheetOptions>
 </Worksheet>
 <Worksheet ss:Name="Ẩn">
  <Table><Row><Cell><Data ss:Type="String">x</Data></Cell></Row></Table>
  <WorksheetOptions xmlns="urn:schemas-microsoft-com:office:excel">
   <Visible>SheetHidden</Visible>
  </WorksheetOptions>
 </Worksheet>
 <Worksheet ss:Name="Rất ẩn">
  <Table/>
  <WorksheetOptions xmlns="urn:schemas-microsoft-com:office:excel">
   <Visible>SheetVeryHidden</Visible>
  </WorksheetOptions>
 </Worksheet>
 <Worksheet ss:Name="Trống"/>
</Workbook>
"""


def test_excel_saved_workbook():
    book = Xml2003Book(EXCEL_SAVED.encode("utf-8"))
    assert book.sheet_names() == ["Báo cáo", "Ẩn", "Rất ẩn", "Trống"]
    assert book.visible_sheets() == ["Báo cáo", "Trống"]
    grid, merges = book.grid("Báo cáo", **LIMITS)
    assert typed(grid) == typed([
        ["BÁO CÁO", "", "", "", ""],
        ["", "", "", "", ""],
        ["Năm", "Kết nạp", "", "", "Ghi chú"],
        ["", "Tổng số", "", "Nữ", ""],
        [2021.0, 12.0, 24.0, 5.0, "1.250"],
    ])
    assert merges == [((0, 0), (0, 4)), ((2, 0), (3, 0)), ((2, 1), (2, 3)), ((2, 4), (3, 4))]
    assert book.grid("Rất ẩn", **LIMITS) == ([], [])
    assert book.grid("Trống", **LIMITS) == ([], [])


@pytest.mark.parametrize("rows, expected", [
    pytest.param(cell("a") + cell("b", attributes=' ss:Index="4"') + cell("c"),
                 [["a", "", "", "b", "c"]], id="cell-index-then-next"),
    pytest.param("<Row>" + cell("a") + "</Row>"
                 + '<Row ss:Index="4">' + cell("b", attributes=' ss:Index="2"') + "</Row>"
                 + "<Row>" + cell("c") + "</Row>",
                 [["a", ""], ["", ""], ["", ""], ["", "b"], ["c", ""]], id="row-index-then-next"),
    pytest.param(cell("a", attributes=' ss:MergeAcross="2"') + cell("b"), [["a", "", "", "b"]],
                 id="after-merge-across"),
    pytest.param('<Cell ss:Index="3"/>' + cell("b"), [["", "", "", "b"]], id="empty-cell-keeps-its-place"),
    pytest.param("<Cell><Data ss:Type=\"String\"></Data></Cell>" + cell("b"), [["", "b"]], id="empty-string"),
    pytest.param('<Cell ss:Index="900"/>', [], id="empty-far-cell-counts-nothing"),
    pytest.param(cell("a", attributes=' Index="2"'), [["", "a"]], id="unprefixed-attribute"),
], )
def test_positions(rows, expected):
    if not rows.startswith("<Row"):
        rows = f"<Row>{rows}</Row>"
    grid, _ = read(rows)
    assert grid == expected


VERTICAL = ("<Row>" + cell("a", attributes=' ss:MergeDown="2"') + cell("b")
            + cell("c", attributes=' ss:MergeAcross="1" ss:MergeDown="1"') + "</Row>")
VERTICAL_GRID = [["a", "b", "c", "", "", ""], ["", "", "", "", "e", "f"], ["", "", "g", "", "", "h"]]
VERTICAL_MERGES = [((0, 0), (2, 0)), ((0, 2), (1, 3))]


@pytest.mark.parametrize("rows, expected", [
    pytest.param(VERTICAL + "<Row>" + cell("e", attributes=' ss:Index="5"') + cell("f") + "</Row>"
                 + "<Row>" + cell("g", attributes=' ss:Index="3"') + cell("h", attributes=' ss:Index="6"') + "</Row>",
                 VERTICAL_GRID, id="excel-numbering"),
    # What Excel would refuse, LibreOffice relies on: a cell right after one a merge from above covers
    # goes to the next free position.
    pytest.param(VERTICAL + "<Row>" + cell("p") + cell("e") + cell("f") + "</Row>"
                 + "<Row>" + cell("q") + cell("g") + cell("h", attributes=' ss:Index="6"') + "</Row>",
                 [["a", "b", "c", "", "", ""], ["", "p", "", "", "e", "f"], ["", "q", "g", "", "", "h"]],
                 id="implicit-after-covered"),
])
def test_vertical_merges(rows, expected):
    grid, merges = read(rows)
    assert grid == expected
    assert merges == VERTICAL_MERGES


def test_libreoffice_numbering_after_vertical_merges():
    """LibreOffice's XSLT counts ss:Index over the positions not covered from above: the same sheet as
    `test_vertical_merges`, as LibreOffice writes it, reads the same."""
    root = ('<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" '
            'xmlns:c="urn:schemas-microsoft-com:office:component:spreadsheet" '
            'xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet" xmlns:x="urn:schemas-microsoft-com:office:excel">')
    rows = (VERTICAL + "<Row>" + cell("e", attributes=' ss:Index="2"') + cell("f") + '<Cell ss:Index="16381"/></Row>'
            + "<Row>" + cell("g", attributes=' ss:Index="2"') + cell("h", attributes=' ss:Index="5"') + "</Row>")
    sheet = f'<ss:Worksheet ss:Name="S"><Table ss:StyleID="ta1">{rows}</Table><x:WorksheetOptions/></ss:Worksheet>'
    text = document(sheet, root=root,
                    prolog='<?xml version="1.0" encoding="UTF-8"?>\n<?mso-application progid="Excel.Sheet"?>')
    grid, merges = Xml2003Book(text.encode("utf-8")).grid("S", **LIMITS)
    assert grid == VERTICAL_GRID
    assert merges == VERTICAL_MERGES


@pytest.mark.parametrize("data, expected", [
    pytest.param(cell("1250", "Number"), 1250.0, id="integral-number-is-float"),
    pytest.param(cell("30.5", "Number"), 30.5, id="number"),
    pytest.param(cell("1E+20", "Number"), 1e20, id="exponent"),
    pytest.param(cell(" 7 ", "Number"), 7.0, id="spaces"),
    pytest.param(cell("1.250", "String"), "1.250", id="text-number"),
    pytest.param(cell("Dòng 1&#10;Dòng 2", "String"), "Dòng 1\nDòng 2", id="line-break"),
    pytest.param('<Cell><ss:Data ss:Type="String" xmlns="http://www.w3.org/TR/REC-html40"><B>Đậm</B> và '
                 '<Font html:Color="#FF0000">đỏ</Font>&#10;<I><U>hai</U></I></ss:Data></Cell>',
                 "Đậm và đỏ\nhai", id="rich-text"),
    pytest.param(cell("1", "Boolean"), True, id="true"),
    pytest.param(cell("0", "Boolean"), False, id="false"),
    pytest.param(cell("2023-05-17T00:00:00.000", "DateTime"), dt.date(2023, 5, 17), id="date"),
    pytest.param(cell("2023-05-17T08:30:00.000", "DateTime"), dt.datetime(2023, 5, 17, 8, 30), id="datetime"),
    pytest.param(cell("1899-12-31T08:30:00.000", "DateTime"), dt.time(8, 30), id="time"),
    pytest.param(cell("17/05/2023", "DateTime"), "17/05/2023", id="unparsable-date"),
    pytest.param(cell("#DIV/0!", "Error"), "", id="error-as-calamine"),
    pytest.param(cell("abc", "Number"), "abc", id="not-a-number"),
    pytest.param(cell("inf", "Number"), "inf", id="infinity-is-text"),
    pytest.param(cell("24", "Number", ' ss:Formula="=R1C1*2"'), 24.0, id="formula-cached"),
    pytest.param('<Cell><Data>plain</Data></Cell>', "plain", id="no-type"),
])
def test_values(data, expected):
    grid, _ = read(f"<Row>{data}</Row>")
    assert typed(grid) == typed([[expected]])


def test_formula_without_value():
    grid, _ = read('<Row><Cell ss:Formula="=SUM(R[1]C:R[3]C)"/></Row>')
    assert isinstance(grid[0][0], FormulaWithoutValue)
    assert grid[0][0] == "=SUM(R[1]C:R[3]C)"


@pytest.mark.parametrize("doctype", [
    pytest.param('<!DOCTYPE Workbook [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
                 id="entity-expansion"),
    pytest.param('<!DOCTYPE Workbook [<!ENTITY secret SYSTEM "file:///etc/passwd">]>', id="external-entity"),
    pytest.param('<!DOCTYPE Workbook SYSTEM "http://example.invalid/x.dtd">', id="external-dtd"),
    pytest.param("<!DOCTYPE Workbook>", id="bare-doctype"),
])
def test_dtd_refused(doctype):
    text = document(worksheet("S", "<Row>" + cell("&b;") + "</Row>"),
                    prolog=f'<?xml version="1.0"?>\n{doctype}\n')
    with pytest.raises(DefusedXmlException):
        Xml2003Book(text.encode("utf-8"))


@pytest.mark.parametrize("rows, height, width", [
    pytest.param('<Row><Cell ss:Index="16000"><Data ss:Type="String">x</Data></Cell></Row>', 2_000, 16_000,
                 id="far-column"),
    pytest.param('<Row><Cell ss:Index="999999999999"><Data ss:Type="Number">1</Data></Cell></Row>',
                 2_000, 999_999_999_999, id="absurd-column"),
    pytest.param('<Row><Cell ss:MergeAcross="5000000"/>' + cell("x") + "</Row>", 2_000, 5_000_002,
                 id="after-huge-merge"),
    pytest.param('<Row ss:Index="3000000">' + cell("a") + cell("b") + "</Row>", 3_000_000, 2, id="far-row"),
])
def test_far_cells_refused_without_allocating(rows, height, width):
    started = time.perf_counter()
    book = Xml2003Book(document(worksheet("S", rows * 2_000)).encode("utf-8"))
    with pytest.raises(SheetTooLarge) as refused:
        book.grid("S", **LIMITS)
    assert (refused.value.height, refused.value.width) == (height, width)
    assert time.perf_counter() - started < 5  # 2000 such cells, each counted, none padded out to


def test_kept_rows_and_columns_are_capped():
    far = cell("x", attributes=' ss:Index="6"')
    rows = "".join(f"<Row>{cell(str(r), 'Number')}{far}</Row>" for r in range(10))
    text = document(worksheet("S", rows)).encode("utf-8")
    grid, _ = Xml2003Book(text, max_rows=3).grid("S", **LIMITS)
    assert grid == [[0.0, "", "", "", "", "x"], [1.0, "", "", "", "", "x"], [2.0, "", "", "", "", "x"]]
    grid, _ = Xml2003Book(text).grid("S", **{**LIMITS, "max_rows": 2})
    assert len(grid) == 2
    with pytest.raises(SheetTooLarge):  # wider than the book kept, however wide the caller allows
        Xml2003Book(text, max_columns=4).grid("S", **LIMITS)
    with pytest.raises(SheetTooLarge):
        Xml2003Book(text).grid("S", **{**LIMITS, "max_cells": 59})


@pytest.mark.parametrize("encoding, bom", [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"), ("utf-16-le", b"")],
                         ids=["le", "be", "le-without-mark"])
def test_utf16(encoding, bom):
    text = document(worksheet("Báo cáo", "<Row>" + cell("Đoàn viên ưu tú") + cell("41", "Number") + "</Row>"),
                    prolog='<?xml version="1.0" encoding="UTF-16"?>\n<?mso-application progid="Excel.Sheet"?>\n')
    data = bom + text.encode(encoding)
    assert looks_like_xml2003(data[:4096])
    book = Xml2003Book(data)
    assert book.visible_sheets() == ["Báo cáo"]
    assert typed(book.grid("Báo cáo", **LIMITS)[0]) == typed([["Đoàn viên ưu tú", 41.0]])


@pytest.mark.parametrize("text", [
    '<?xml version="1.0"?><root xmlns="urn:schemas-microsoft-com:office:spreadsheet"/>',
    '<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet">'
    '<Worksheet ss:Name="S"/></Workbook>',
    '<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet>',
])
def test_not_a_workbook_raises(text):
    with pytest.raises(Exception) as raised:  # ValueError: no Workbook root; ParseError: unbound prefix, cut off
        Xml2003Book(text.encode("utf-8"))
    assert isinstance(raised.value, (ValueError, SyntaxError))


@pytest.mark.parametrize("head, expected", [
    pytest.param(document(worksheet("S", "")).encode("utf-8"), True, id="excel"),
    pytest.param(b"\xef\xbb\xbf \r\n\t" + document(worksheet("S", "")).encode("utf-8"), True, id="bom-and-space"),
    pytest.param(b"\xff\xfe" + document(worksheet("S", "")).encode("utf-16-le"), True, id="utf-16-le"),
    pytest.param(b"\xfe\xff" + document(worksheet("S", "")).encode("utf-16-be"), True, id="utf-16-be"),
    pytest.param(document(worksheet("S", "")).encode("utf-16-le"), True, id="utf-16-no-bom"),
    pytest.param(b'<?xml version="1.0"?>' + b" " * 5000 + b"urn:schemas-microsoft-com:office:spreadsheet", False,
                 id="namespace-too-late"),
    pytest.param(b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"/>', False, id="other-xml"),
    pytest.param(b'<html><table xmlns:x="urn:schemas-microsoft-com:office:spreadsheet">', False, id="html"),
    pytest.param(b"PK\x03\x04", False, id="zip"),
    pytest.param(b"", False, id="empty"),
])
def test_looks_like_xml2003(head, expected):
    assert looks_like_xml2003(head[:4096]) is expected


# ---------------------------------------------------------------- .xlsb, from SheetJS where it is installed


def _sheetjs_available() -> bool:
    if NODE is None:
        return False
    probe = subprocess.run([NODE, "-e", "require('xlsx')"], capture_output=True, timeout=60, check=False)
    return probe.returncode == 0


def write_xlsb_with_sheetjs(source: Path, target: Path) -> Path:
    """An .xlsb as SheetJS writes it (neither LibreOffice, whose "Calc MS Excel 2007 Binary" filter only
    imports, nor Gnumeric writes the format). SheetJS is found by node's own lookup (NODE_PATH)."""
    script = ("const X = require('xlsx'); X.writeFile(X.readFile(process.argv[1]), process.argv[2], "
              "{bookType: 'xlsb'});")
    subprocess.run([NODE or "node", "-e", script, str(source), str(target)], check=True, timeout=120,
                   capture_output=True)
    return target


needs_sheetjs = pytest.mark.skipif(not _sheetjs_available(),
                                   reason="node with the SheetJS 'xlsx' module is not installed")


@pytest.fixture(scope="module")
def sheetjs_pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("xlsb")
    source = folder / "bao_cao.xlsx"
    form_workbook().save(source)
    return source, write_xlsb_with_sheetjs(source, folder / "bao_cao.xlsb")


@needs_sheetjs
def test_sheetjs_xlsb_is_screened_as_xlsb(sheetjs_pair):
    _, xlsb = sheetjs_pair
    assert screen(xlsb).kind == "xlsb"


@needs_sheetjs
@pytest.mark.xfail(strict=True, reason="python-calamine skips the BrtShort* cell records SheetJS writes for every "
                                       "cell after the first of a row, and gives no merges for .xlsb")
def test_sheetjs_xlsb_reads_as_the_xlsx(sheetjs_pair):
    source, xlsb = sheetjs_pair
    xlsx, binary = source.read_bytes(), xlsb.read_bytes()
    expected = CalamineBook(io.BytesIO(xlsx), "xlsx", xlsx).grid("Báo cáo", **LIMITS)
    grid, merges = CalamineBook(io.BytesIO(binary), "xlsb", binary).grid("Báo cáo", **LIMITS)
    assert typed(grid) == typed(expected[0])
    assert sorted(merges) == sorted(expected[1])

"""The zip directory reader of the screen agrees with zipfile, and never raises on damaged bytes."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.read.screen import screen, zip_members

_NAMES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x1EF9, blacklist_categories=("Cs",)),
                 min_size=1, max_size=30).filter(lambda n: not n.endswith("/") and "\x00" not in n)
_MEMBERS = st.lists(st.tuples(_NAMES, st.binary(max_size=3000), st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])),
                    min_size=1, max_size=8, unique_by=lambda m: m[0])


def _zip(members, comment: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, method in members:
            archive.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), data, compress_type=method)
        archive.comment = comment
    return buffer.getvalue()


def _as_zipfile_sees_it(raw: bytes) -> list[tuple]:
    return [(i.filename, i.flag_bits, i.compress_type, i.compress_size, i.file_size, i.header_offset)
            for i in zipfile.ZipFile(io.BytesIO(raw)).infolist()]


@settings(max_examples=60, deadline=None)
@given(_MEMBERS, st.binary(max_size=40))
def test_directory_matches_zipfile(members, comment):
    ours = zip_members(_zip(members, comment))
    assert ours is not None
    # The comment does not move the directory; zipfile cannot read every comment (one holding the
    # end-record signature defeats it), so it reads the same archive without one.
    assert [(m.filename, m.flag_bits, m.compress_type, m.compress_size, m.file_size, m.header_offset)
            for m in ours] == _as_zipfile_sees_it(_zip(members))


@pytest.mark.parametrize("comment", [b"PK\x05\x06", b"PK\x05\x06" + bytes(18), b"xPK\x05\x06" + bytes(40),
                                     b"PK\x05\x06" * 16_000, (b"PK\x05\x06" + bytes(18)) * 2_000])
def test_comment_holding_the_end_signature(comment):
    raw = _zip([("xl/workbook.xml", b"<workbook/>", zipfile.ZIP_DEFLATED), ("[Content_Types].xml", b"<Types/>", 0)],
               comment)
    assert [m.filename for m in zip_members(raw)] == ["xl/workbook.xml", "[Content_Types].xml"]


def test_bytes_appended_after_the_archive():
    raw = _zip([("xl/workbook.xml", b"<workbook/>", zipfile.ZIP_DEFLATED)]) + b"\r\n-- sent by a mail gateway\r\n"
    assert [m.filename for m in zip_members(raw)] == ["xl/workbook.xml"]
    assert [i[0] for i in _as_zipfile_sees_it(raw)] == ["xl/workbook.xml"]


@settings(max_examples=150, deadline=None)
@given(_MEMBERS, st.data())
def test_damaged_directory_gives_members_or_none_never_an_exception(members, data):
    raw = bytearray(_zip(members))
    for _ in range(data.draw(st.integers(1, 6))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    result = zip_members(bytes(raw[:cut]))
    assert result is None or all(isinstance(m.filename, str) for m in result)


def test_data_before_the_archive_is_left_to_zipfile():
    raw = b"MZ self-extractor stub" + _zip([("xl/workbook.xml", b"<workbook/>", zipfile.ZIP_DEFLATED)])
    assert zip_members(raw) is None
    assert [i[0] for i in _as_zipfile_sees_it(raw)] == ["xl/workbook.xml"]


def _record(kind: int, body: bytes) -> bytes:
    """One BIFF12 record: its type and size as 7-bit varints, then its body."""
    def varint(value: int, limit: int) -> bytes:
        out = bytearray()
        for _ in range(limit):
            byte = value & 0x7F
            value >>= 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                break
        return bytes(out)
    return varint(kind, 2) + varint(len(body), 4) + body


def _xlsb(sheet: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.bin", _record(0x83, b"") + _record(0x84, b""))
        archive.writestr("xl/worksheets/sheet1.bin", sheet)
    return buffer.getvalue()


def test_xlsb_extent_reads_rows_columns_and_cells_of_a_binary_sheet():
    from pipeline.read.screen import xlsb_extent

    sheet = (_record(0x94, struct.pack("<IIII", 0, 11, 0, 8))  # BrtWsDim: rows 0–11, columns 0–8
             + _record(0x00, struct.pack("<I", 4) + b"\x00" * 8)  # BrtRowHdr: row 5
             + _record(0x02, struct.pack("<II", 2, 0) + b"\x00" * 4)  # BrtCellRk in column C
             + _record(0x0D, b"\x00" * 8) + _record(0x0D, b"\x00" * 8))  # two compact cells after it
    extent = xlsb_extent(sheet)
    assert (extent.rows, extent.columns, extent.cells) == (12, 9, 3)


def test_an_xlsb_whose_sheet_claims_a_far_corner_is_refused_before_calamine_sees_it(tmp_path):
    sheet = (_record(0x00, struct.pack("<I", 1_048_000) + b"\x00" * 8)
             + _record(0x02, struct.pack("<II", 16_000, 0) + b"\x00" * 4))
    path = tmp_path / "far.xlsb"
    path.write_bytes(_xlsb(sheet))
    verdict = screen(path)
    assert verdict.issue is not None and verdict.issue.code == "sheet_too_large"
    assert "1048001 hàng × 16001 cột" in verdict.issue.message


def test_an_ordinary_xlsb_passes_the_screen_as_xlsb(tmp_path):
    sheet = _record(0x00, struct.pack("<I", 3) + b"\x00" * 8) + _record(0x02, struct.pack("<II", 1, 0) + b"\x00" * 4)
    path = tmp_path / "ok.xlsb"
    path.write_bytes(_xlsb(sheet))
    verdict = screen(path)
    assert (verdict.kind, verdict.issue) == ("xlsb", None)

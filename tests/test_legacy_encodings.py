"""Legacy Vietnamese font encodings (TCVN3, VNI): the tables, the converter, the detector.

TCVN3 is checked against an independent converter, glibc's iconv (TCVN5712-1). VNI is checked against
the published VNI Windows scheme, spelled here from each letter's Unicode decomposition (reference:
the VNI table of xvnkb, github.com/lamdao/xvnkb, file vni.h: base letter, then one mark character;
tones in the order sắc, huyền, hỏi, ngã, nặng), and against hand-verified words.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tomllib
import unicodedata
from datetime import date
from fnmatch import fnmatch
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.core import legacy
from pipeline.core.legacy import LEGACY_FONTS, convert_grid, detect, encoding_of_font, to_unicode

ROOT = Path(__file__).resolve().parent.parent

GRAVE, ACUTE, TILDE, HOOK, DOT = "\u0300", "\u0301", "\u0303", "\u0309", "\u0323"
TONES = ("", GRAVE, ACUTE, TILDE, HOOK, DOT)
# Every Vietnamese letter beyond ASCII, built from Unicode itself: 12 vowels × 6 tones less the 6 bare
# ASCII vowels, plus đ; then their capitals. 67 + 67 = 134.
LOWER = [letter for vowel in "aăâeêioôơuưy" for tone in TONES
         if not (letter := unicodedata.normalize("NFC", vowel + tone)).isascii()] + ["đ"]
UPPER = [letter.upper() for letter in LOWER]
VN3_CAPITALS = set("ĂÂÊÔƠƯĐ")  # the only capitals TCVN3 (VN3) gives a code of their own


def test_the_alphabet_has_all_134_letters():
    assert len(LOWER) == len(set(LOWER)) == 67
    assert len(UPPER) == len(set(UPPER)) == 67
    assert all(len(letter) == 1 for letter in LOWER + UPPER)


# --- TCVN3 against glibc ------------------------------------------------------------------------------


@functools.cache
def _glibc_available() -> bool:
    if shutil.which("iconv") is None:
        return False
    result = subprocess.run(["iconv", "-f", "utf-8", "-t", "TCVN5712-1"], input="à".encode(),
                            capture_output=True, check=False)
    return result.returncode == 0 and result.stdout == b"\xb5"


@functools.cache
def _glibc_bytes(text: str) -> bytes:
    result = subprocess.run(["iconv", "-f", "utf-8", "-t", "TCVN5712-1"], input=text.encode(),
                            capture_output=True, check=True)
    return result.stdout


@functools.cache
def _glibc_letters() -> dict[str, bytes]:
    """Each letter's glibc TCVN5712-1 bytes, from one iconv run."""
    encoded = _glibc_bytes("\n".join(LOWER + UPPER)).split(b"\n")
    assert len(encoded) == len(LOWER + UPPER)
    return dict(zip(LOWER + UPPER, encoded, strict=True))


@pytest.fixture
def glibc():
    if not _glibc_available():
        pytest.skip("iconv without TCVN5712-1 (glibc's TCVN3) on this machine")
    return lambda text: _glibc_bytes(text).decode("latin-1")  # the cell text a reader would show


@pytest.mark.parametrize("letter", LOWER + UPPER)
def test_every_letter_converts_back_from_what_glibc_writes(glibc, letter):
    """A VN3 letter: glibc writes it as one byte of 0xA0–0xFF, which converts back to the letter.
    A capital with a tone has no VN3 code (glibc writes its VN1 code, C0 control, 0x80–0x9F or a VN3
    gap, which the ABC fonts lack): the typist uses the lowercase code in an H font (.VnTimeH), and the
    conversion with uppercase=True gives the capital."""
    if letter.islower() or letter in VN3_CAPITALS:
        encoded = _glibc_letters()[letter]
        assert len(encoded) == 1 and encoded[0] >= 0xA0, encoded
        assert to_unicode(encoded.decode("latin-1"), "tcvn3") == letter
    else:
        assert to_unicode(glibc(letter.lower()), "tcvn3", uppercase=True) == letter


def test_the_capitals_glibc_puts_in_the_vn3_gaps_are_left_alone(glibc):
    gap_bytes = [encoded for letter, encoded in _glibc_letters().items()
                 if letter.isupper() and letter not in VN3_CAPITALS and len(encoded) == 1 and encoded[0] >= 0xA0]
    assert len(gap_bytes) == 16  # Ằ Ẳ Ẵ Ắ Ầ Ẩ Ẫ Ấ Ề Ể Ễ Ế Ồ Ổ Ỗ Ố
    for encoded in gap_bytes:
        text = encoded.decode("latin-1")
        assert to_unicode(text, "tcvn3") == text


SENTENCES = [
    " ".join(LOWER),
    "bch thành đoàn thuận an: tổng số đoàn viên, số lượng đảng viên mới kết nạp",
    "Đoàn Thanh niên Cộng sản Hồ Chí Minh",
    "Trường Trung học phổ thông Trịnh Hoài Đức, năm học 2022-2023",
    "nghiêng ngửa khuỷu tay rượu ngoằng quyết tuyển giữ gìn khỏe mạnh",
    "Ăn Âm Êm Ông Ơn Ưng Đi",
]


@pytest.mark.parametrize("sentence", SENTENCES)
def test_sentences_round_trip_through_glibc(glibc, sentence):
    assert to_unicode(glibc(sentence), "tcvn3") == sentence


def test_the_soft_hyphen_is_u_with_horn(glibc):
    assert glibc("Trường") == "Tr\u00adêng"
    assert to_unicode("Tr\u00adêng", "tcvn3") == "Trường"
    assert to_unicode("Tr\u00adêng", "tcvn3", uppercase=True) == "TRƯỜNG"
    assert to_unicode("\u00ad", "tcvn3") == "ư"


# --- the examples -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "encoding", "uppercase", "expected"), [
    ("BCH Thµnh §oµn ThuËn An", "tcvn3", False, "BCH Thành Đoàn Thuận An"),
    ("Tæng sè ®oµn viªn", "tcvn3", False, "Tổng số đoàn viên"),
    ("Toång soá ñoaøn vieân", "vni", False, "Tổng số đoàn viên"),
    ("BCH Thµnh §oµn ThuËn An", "tcvn3", True, "BCH THÀNH ĐOÀN THUẬN AN"),
    ("Tæng sè ®oµn viªn", "tcvn3", True, "TỔNG SỐ ĐOÀN VIÊN"),
    ("THµNH §OµN THUËN AN", "tcvn3", True, "THÀNH ĐOÀN THUẬN AN"),
    ("Sè l\u00adîng: 12", "tcvn3", False, "Số lượng: 12"),
    ("", "tcvn3", False, ""),
    ("Total 2023", "vni", False, "Total 2023"),
])
def test_examples(text, encoding, uppercase, expected):
    assert to_unicode(text, encoding, uppercase) == expected


def test_a_vntimeh_cell_converts_through_its_font():
    encoding, uppercase = encoding_of_font(".VnTimeH")
    assert to_unicode("BCH Thµnh §oµn ThuËn An", encoding, uppercase) == "BCH THÀNH ĐOÀN THUẬN AN"


def test_decomposed_legacy_text_converts_too():
    assert to_unicode(unicodedata.normalize("NFD", "Tæng sè"), "tcvn3") == "Tổng số"


def test_an_unknown_encoding_is_refused():
    with pytest.raises(ValueError, match="unknown legacy encoding"):
        to_unicode("abc", "viscii")


# --- fonts --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("font", "expected"), [
    (".VnTime", ("tcvn3", False)),
    (".VnTimeH", ("tcvn3", True)),
    (".VnArial", ("tcvn3", False)),
    (".VnArialH", ("tcvn3", True)),
    (".VnArial NarrowH", ("tcvn3", True)),
    (".VnBook-Antiqua", ("tcvn3", False)),
    (" .VnTimeH ", ("tcvn3", True)),
    (".vntime", ("tcvn3", False)),
    ("VNI-Times", ("vni", False)),
    ("VNI-Helve", ("vni", False)),
    ("vni-times", ("vni", False)),
    ("Times New Roman", None),
    ("Arial", None),
    ("VnTime", None),
    ("", None),
])
def test_encoding_of_font(font, expected):
    assert encoding_of_font(font) == expected


def test_legacy_fonts_name_known_encodings():
    assert dict(LEGACY_FONTS) == {".vn": "tcvn3", "vni-": "vni"}
    assert set(LEGACY_FONTS.values()) <= set(legacy.ENCODINGS)


# --- VNI ----------------------------------------------------------------------------------------------

# The VNI Windows scheme (see the module docstring for the reference table).
VNI_TONE = {ACUTE: "ù", GRAVE: "ø", HOOK: "û", TILDE: "õ", DOT: "ï"}
VNI_CIRCUMFLEX = {"": "â", ACUTE: "á", GRAVE: "à", HOOK: "å", TILDE: "ã", DOT: "ä"}  # a, e, o + ^
VNI_BREVE = {"": "ê", ACUTE: "é", GRAVE: "è", HOOK: "ú", TILDE: "ü", DOT: "ë"}  # a + ˘
VNI_I = {"": "i", ACUTE: "í", GRAVE: "ì", HOOK: "æ", TILDE: "ó", DOT: "ò"}
VNI_HORN = {"o": "ô", "u": "ö"}  # ơ, ư


def vni_spelling(text: str) -> str:
    """Unicode Vietnamese → how a VNI font stores it (read as cp1252), one letter at a time."""
    out = []
    for letter in text:
        lower = letter.lower()
        parts = unicodedata.normalize("NFD", lower)
        base, marks = parts[0], parts[1:]
        tone = next((mark for mark in marks if mark in VNI_TONE), "")
        if lower == "đ":
            spelled = "ñ"
        elif not base.isascii():
            spelled = lower  # not a Vietnamese letter: left as it is
        elif "\u0302" in marks:
            spelled = base + VNI_CIRCUMFLEX[tone]
        elif "\u0306" in marks:
            spelled = base + VNI_BREVE[tone]
        elif "\u031b" in marks:
            spelled = VNI_HORN[base] + VNI_TONE.get(tone, "")
        elif base == "i":
            spelled = VNI_I[tone]
        elif base == "y" and tone == DOT:
            spelled = "î"
        else:
            spelled = base + VNI_TONE.get(tone, "")
        out.append(spelled.upper() if letter.isupper() else spelled)
    return "".join(out)


@pytest.mark.parametrize("letter", LOWER + UPPER)
def test_every_letter_converts_back_from_the_published_vni_scheme(letter):
    spelled = vni_spelling(letter)
    assert spelled != letter or letter in "íìÍÌ"  # VNI keeps í and ì as they are
    assert to_unicode(spelled, "vni") == letter


# Hand-verified against the VNI Windows table: (as stored, Unicode).
VNI_WORDS = [
    ("Ñoaøn", "Đoàn"),
    ("Thanh nieân", "Thanh niên"),
    ("Coäng saûn", "Cộng sản"),
    ("Hoà Chí Minh", "Hồ Chí Minh"),
    ("Vieät Nam", "Việt Nam"),
    ("Bình Döông", "Bình Dương"),
    ("Thaønh Ñoaøn Thuaän An", "Thành Đoàn Thuận An"),
    ("Thuû Daàu Moät", "Thủ Dầu Một"),
    ("tröôøng hoïc", "trường học"),
    ("sinh vieân", "sinh viên"),
    ("ñaûng vieân", "đảng viên"),
    ("keát naïp", "kết nạp"),
    ("nöõ", "nữ"),
    ("daân toäc", "dân tộc"),
    ("toân giaùo", "tôn giáo"),
    ("ngöôøi", "người"),
    ("ñöôïc", "được"),
    ("huyeän", "huyện"),
    ("xaõ", "xã"),
    ("phöôøng", "phường"),
    ("thò traán", "thị trấn"),
    ("Ban Chaáp haønh", "Ban Chấp hành"),
    ("Phoù Bí thö", "Phó Bí thư"),
    ("uûy vieân", "ủy viên"),
    ("quoác", "quốc"),
    ("khuyeán khích", "khuyến khích"),
    ("doanh nghieäp", "doanh nghiệp"),
    ("coâng nhaân", "công nhân"),
    ("lao ñoäng", "lao động"),
    ("tuoåi", "tuổi"),
    ("gioûi", "giỏi"),
    ("xuaát saéc", "xuất sắc"),
    ("naêm", "năm"),
    ("thaùng", "tháng"),
    ("ngaøy", "ngày"),
    ("baùo caùo", "báo cáo"),
    ("ñôn vò", "đơn vị"),
    ("tæ leä", "tỉ lệ"),
    ("kyû nieäm", "kỷ niệm"),
    ("Myõ", "Mỹ"),
    ("löïc", "lực"),
    ("cöû", "cử"),
    ("ñeán", "đến"),
    ("chuyeân moân", "chuyên môn"),
    ("hoäi", "hội"),
    ("kyø", "kỳ"),
    ("yù kieán", "ý kiến"),
    ("ñaëc bieät", "đặc biệt"),
    ("thaúng", "thẳng"),
    ("ñaõ", "đã"),
    ("giöõ gìn", "giữ gìn"),
    ("khoûe", "khỏe"),
    ("ÑOAØN THANH NIEÂN", "ĐOÀN THANH NIÊN"),
    ("TRÖÔØNG", "TRƯỜNG"),
    ("COÄNG HOØA XAÕ HOÄI CHUÛ NGHÓA VIEÄT NAM", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"),
    ("ÑAÛNG", "ĐẢNG"),
    ("Ñoäc laäp - Töï do - Haïnh phuùc", "Độc lập - Tự do - Hạnh phúc"),
    ("ÔÛ", "Ở"),
    ("ÖÙng", "Ứng"),
    ("AÊn uoáng", "Ăn uống"),
]


def test_the_hand_verified_vni_list_is_long_enough():
    assert sum(len(unicode.split()) for _, unicode in VNI_WORDS) >= 40


@pytest.mark.parametrize(("stored", "expected"), VNI_WORDS)
def test_hand_verified_vni_words(stored, expected):
    assert to_unicode(stored, "vni") == expected
    assert vni_spelling(expected) == stored  # the scheme above and the hand list agree


# --- the tables as shipped ----------------------------------------------------------------------------


@pytest.mark.parametrize(("encoding", "entries"), [("tcvn3", 74), ("vni", 134)])
def test_the_tables_are_data_files_of_single_letters(encoding, entries):
    path = ROOT / "pipeline" / "core" / "encodings" / f"{encoding}.tsv"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#")
    mappings = [line.split("\t") for line in lines if line and not line.startswith("#")]
    assert len(mappings) == entries
    assert {unicode for _, unicode in mappings} <= set(LOWER + UPPER)


def test_pyproject_ships_the_tables():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["pipeline.core"]
    for name in ("tcvn3.tsv", "vni.tsv"):
        assert any(fnmatch(f"encodings/{name}", pattern) for pattern in patterns)


# --- grids --------------------------------------------------------------------------------------------


def test_convert_grid_converts_text_cells_only():
    day = date(2023, 5, 1)
    grid = [["Tæng sè ®oµn viªn", 12, None, 3.5], ["BCH Thµnh §oµn", True, day, ""]]
    converted = convert_grid(grid, "tcvn3")
    assert converted == [["Tổng số đoàn viên", 12, None, 3.5], ["BCH Thành Đoàn", True, day, ""]]
    assert converted[1][2] is day
    assert grid[0][0] == "Tæng sè ®oµn viªn"  # the input is untouched
    assert converted is not grid and converted[0] is not grid[0]


def test_convert_grid_upper_cases_for_an_uppercase_font():
    assert convert_grid([["Thµnh §oµn", 1]], "tcvn3", uppercase=True) == [["THÀNH ĐOÀN", 1]]


# --- detection ----------------------------------------------------------------------------------------

TCVN3_SHEET = ["BCH Thµnh §oµn ThuËn An", "Tæng sè ®oµn viªn", "Sè l\u00adîng", "Ghi chó", "STT", "12", "3,5"]
VNI_SHEET = ["Toång soá ñoaøn vieân", "Thaønh Ñoaøn Thuaän An", "Ghi chuù", "STT", "12"]


@pytest.mark.parametrize(("texts", "expected"), [
    (TCVN3_SHEET, "tcvn3"),
    (TCVN3_SHEET + ["Total", "Email: a@b.vn", "25°C ± 2"], "tcvn3"),
    (["THµNH §OµN THUËN AN", "B¸O C¸O TæNG HîP"], "tcvn3"),  # .VnTimeH typed with caps lock
    (["Tr\u00adêng THPT", "§oµn viªn"], "tcvn3"),
    (VNI_SHEET, "vni"),
    (["ÑOAØN THANH NIEÂN", "COÄNG HOØA XAÕ HOÄI CHUÛ NGHÓA VIEÄT NAM"], "vni"),
    ([stored for stored, _ in VNI_WORDS], "vni"),
    (["Tổng số đoàn viên", "Thành Đoàn Thuận An", "Ban Chấp hành Đoàn trường"], None),
    (["TỔNG SỐ ĐOÀN VIÊN", "TÊN", "MÃ SỐ"], None),
    (["Tên", "Mã", "Tôi là sinh viên", "Chi", "Anh", "Cán", "Viên"], None),  # Latin-1 letters only
    ([unicodedata.normalize("NFD", "Tổng số đoàn viên, tên đơn vị")], None),
    (["Hello world", "Total", "ID", "N/A"], None),
    (["1", "2.5", "1.234.567", "2023-01-01", "-3"], None),
    ([], None),
    ([""], None),
    (["Température 25°C ± 2", "José Martí", "Hélène Müller", "Café Noël", "naïve façade", "© 2023", "Zoë",
      "Señor Nuñez", "Ørsted", "Ångström", "« citation »", "½ · ¼"], None),
    (["Nguyễn Văn An", "Trần Thị Bé", "Lê Văn Tám", "François Dupré", "Phạm Thị Hồng Nhung"], None),
    (["§oµn"], None),  # one legacy word is not evidence enough
    (TCVN3_SHEET[:2] + ["Tổng số đoàn viên", "Thành Đoàn Thuận An", "Ban Chấp hành Đoàn trường",
                        "Số lượng đảng viên", "Đơn vị"], None),  # mostly Unicode: left alone
])
def test_detect(texts, expected):
    assert detect(texts) == expected


def test_detect_skips_cells_that_are_not_text():
    assert detect([12, None, 3.5, *TCVN3_SHEET]) == "tcvn3"


def test_detect_a_sheet_glibc_wrote_in_tcvn3(glibc):
    sheet = ["Đoàn Thanh niên Cộng sản Hồ Chí Minh", "Thành Đoàn Thuận An", "Tổng số đoàn viên",
             "Trường Trung học phổ thông", "Số lượng", "ghi chú"]
    assert detect([glibc(text) for text in sheet]) == "tcvn3"
    assert detect(sheet) is None


def test_detect_a_sheet_spelled_in_vni():
    sheet = ["Đoàn Thanh niên Cộng sản Hồ Chí Minh", "Thành Đoàn Thuận An", "Tổng số đoàn viên",
             "Trường Trung học phổ thông", "Số lượng", "ghi chú"]
    assert detect([vni_spelling(text) for text in sheet]) == "vni"


# Real Vietnamese words, many of them written with Latin-1 letters only (à, é, ê, ô, ...), which read
# as other letters in TCVN3 or VNI.
VIETNAMESE = """
    tổng số đoàn viên thành đoàn thuận an ban chấp hành trường học sinh cán bộ tên mã đơn vị
    tôi là chi anh em cán viên tháng năm ngày báo cáo kết quả đảng nạp mới ưu tú nữ nam dân tộc
    tôn giáo huyện xã phường thị trấn khu phố ấp quận tỉnh bí thư phó ủy thường vụ hội
    liên hiệp thanh niên công nhân lao động doanh nghiệp nghiên cứu khoa kỹ thuật giỏi xuất sắc
    quốc gia khuyến khích tuyên truyền giáo dục ý kiến đề nghị ghi chú tổ chức quyết định
    nghiêng khuỷu rượu ngoằng giữ gìn khỏe mạnh người được việt bình dương thủ dầu một
    tiếng hòa hoà xoong boong quạ giếng gieo ghế nghe kìa của cuối quê quý que xòe thuê tuổi
    hươu bướm uống ông ơn ấy ở ạ ừ ô ê á à có không và với các cho từ đến trên dưới
    lê hà tú mai lan hồng cúc đào tâm tín nghĩa trí dũng yến oanh uyên khánh
""".split()
WORD_FORMS = st.sampled_from(VIETNAMESE).flatmap(
    lambda word: st.sampled_from([word, word.capitalize(), word.upper()]))
CELL = st.one_of(
    st.lists(WORD_FORMS, min_size=1, max_size=8).map(" ".join),
    st.integers(-10**6, 10**6).map(str),
    st.sampled_from(["STT", "Total", "N/A", "", "25°C", "±2"]),
)


@given(st.lists(CELL, max_size=40), st.booleans())
def test_unicode_vietnamese_is_never_detected_as_legacy(cells, decomposed):
    if decomposed:
        cells = [unicodedata.normalize("NFD", cell) for cell in cells]
    assert detect(cells) is None


@given(st.lists(WORD_FORMS, min_size=1, max_size=12).map(" ".join))
def test_vni_spelling_converts_back(text):
    assert to_unicode(vni_spelling(text), "vni") == text

"""Vietnamese text typed in the legacy 8-bit font encodings, found and turned into Unicode.

Older offices type with TCVN3 (ABC) fonts (.VnTime, .VnTimeH, .VnArial, ...) or VNI fonts (VNI-Times,
...). The file keeps the font's byte values, which a reader shows as the cp1252/Latin-1 characters of
those bytes: "BCH Thµnh §oµn" is TCVN3 for "BCH Thành Đoàn", "Toång soá" is VNI for "Tổng số".

The mapping tables are data (encodings/tcvn3.tsv, encodings/vni.tsv), read once when first needed.
`detect` decides from the characters alone whether a sheet's texts are in one of these encodings;
`to_unicode` and `convert_grid` convert. Imports nothing from the project.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

ENCODINGS: Final = ("tcvn3", "vni")
_TABLES_DIR = Path(__file__).resolve().parent / "encodings"

# Font-name prefix (compared case-insensitively) → the encoding its text is stored in. A TCVN3 font
# whose name ends in "H" (.VnTimeH, .VnArialH) is an uppercase font: it shows every code as a capital.
LEGACY_FONTS: Final[Mapping[str, str]] = MappingProxyType({".vn": "tcvn3", "vni-": "vni"})
_UPPERCASE_FONT_SUFFIX = "H"


def encoding_of_font(font_name: str) -> tuple[str, bool] | None:
    """The legacy encoding a font stores its text in and whether it is an uppercase font, or None for
    a Unicode font: ".VnTimeH" → ("tcvn3", True), "VNI-Times" → ("vni", False), "Arial" → None."""
    name = font_name.strip()
    for prefix, encoding in LEGACY_FONTS.items():
        if name.lower().startswith(prefix):
            return encoding, encoding == "tcvn3" and name.endswith(_UPPERCASE_FONT_SUFFIX)
    return None


# --- tables ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    mapping: Mapping[str, str]  # legacy sequence as read → Unicode letter
    pattern: re.Pattern[str]  # every legacy sequence, longest first
    word: re.Pattern[str]  # a run of letters and legacy characters: one word to judge


@cache
def _table(encoding: str) -> _Table:
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown legacy encoding {encoding!r}; known: {', '.join(ENCODINGS)}")
    path = _TABLES_DIR / f"{encoding}.tsv"
    mapping: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        line = line.rstrip("\r")
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0] or not fields[1]:
            raise ValueError(f"{path.name} line {number}: expected 'legacy<TAB>unicode', got {line!r}")
        legacy, letter = fields
        if legacy in mapping:
            raise ValueError(f"{path.name} line {number}: {legacy!r} is mapped twice")
        mapping[legacy] = letter
    # Alternatives are tried left to right: longest sequences first makes the match the longest one.
    keys = sorted(mapping, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(key) for key in keys))
    legacy_chars = "".join(sorted({char for key in keys for char in key}))
    word = re.compile(rf"(?:[^\W\d_]|[{re.escape(legacy_chars)}])+")
    return _Table(MappingProxyType(mapping), pattern, word)


def to_unicode(text: str, encoding: str, uppercase: bool = False) -> str:
    """`text` as read from a cell in a legacy font ("tcvn3" or "vni") → Unicode (NFC). Characters the
    table does not know pass unchanged. `uppercase`: the text was shown in an uppercase font
    (.VnTimeH), so the result is upper-cased as the reader saw it."""
    table = _table(encoding)
    converted = table.pattern.sub(lambda match: table.mapping[match.group()], unicodedata.normalize("NFC", text))
    return converted.upper() if uppercase else converted


def convert_grid(grid: list[list[Any]], encoding: str, uppercase: bool = False) -> list[list[Any]]:
    """A new grid with every text cell converted by `to_unicode`; other cells are kept as they are."""
    return [[to_unicode(cell, encoding, uppercase) if isinstance(cell, str) else cell for cell in row]
            for row in grid]


# --- Vietnamese syllables ----------------------------------------------------------------------------

_TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")  # huyền, sắc, ngã, hỏi, nặng
_CHECKED_TONES = frozenset("\u0301\u0323")  # sắc and nặng: the only tones of a rime ending in p, t, c, ch
_INITIALS = ("ngh", "ng", "nh", "ch", "gh", "gi", "kh", "ph", "qu", "th", "tr",
             "b", "c", "d", "đ", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "x", "")
# Every rime of standard Vietnamese spelling, without tone (medial o/u included in the rime).
_RIMES = frozenset("""
    a ac ach ai am an ang anh ao ap at au ay
    ăc ăm ăn ăng ăp ăt
    âc âm ân âng âp ât âu ây
    e ec em en eng eo ep et
    ê êch êm ên ênh êp êt êu
    i ia ich im in inh ip it iu
    iêc iêm iên iêng iêp iêt iêu
    yêm yên yêng yêt yêu
    o oc oi om on ong op ot ooc oong
    oa oac oach oai oam oan oang oanh oao oap oat oay
    oăc oăm oăn oăng oăt
    oe oen oeo oet
    ô ôc ôi ôm ôn ông ôp ôt
    ơ ơi ơm ơn ơp ơt
    u uc ui um un ung up ut
    ua uôc uôi uôm uôn uông uôt
    uân uâng uât uây
    uê uêch uênh
    uơ
    uy uych uyn uynh uyp uyt uyu uya uyên uyêt
    ư ưc ưi ưng ưt ưu
    ưa ươc ươi ươm ươn ương ươp ươt ươu
    y
""".split())
_FRONT = ("i", "e", "ê", "y")  # vowels that take k, gh, ngh and refuse c, g, ng


def _spelled_right(initial: str, rime: str) -> bool:
    front = rime.startswith(_FRONT)
    if initial in ("k", "gh", "ngh"):
        return front
    if initial in ("c", "ng"):
        return not front
    if initial == "g":
        return not rime.startswith(("e", "ê", "y"))  # g + i is the gi of "gì", "gìn"
    if initial == "gi":
        return not rime.startswith("i")
    if initial == "qu":
        return not rime.startswith(("o", "u", "ư"))
    return True


@lru_cache(maxsize=65536)
def _is_syllable(word: str) -> bool:
    """Whether a word (any case) is one well-formed Vietnamese syllable in Unicode."""
    decomposed = unicodedata.normalize("NFD", word.lower())
    tones = [char for char in decomposed if char in _TONE_MARKS]
    if len(tones) > 1:
        return False
    base = unicodedata.normalize("NFC", "".join(char for char in decomposed if char not in _TONE_MARKS))
    checked = bool(tones) and tones[0] in _CHECKED_TONES
    for initial in _INITIALS:
        rime = base[len(initial):]
        if base.startswith(initial) and rime in _RIMES and _spelled_right(initial, rime) \
                and (checked or not rime.endswith(("p", "t", "c", "ch"))):
            return True
    return False


# Letters of Vietnamese outside Latin-1 (ă đ ơ ư ĩ ũ and the U+1EA0–U+1EF9 block, both cases): a
# legacy font's text read as cp1252 never holds one, so each is a sign of genuine Unicode.
_VOWELS = "aăâeêioôơuưy"
_LETTERS = frozenset(unicodedata.normalize("NFC", vowel + tone)
                     for vowel in _VOWELS for tone in ("", *sorted(_TONE_MARKS))) | {"đ"}
_BEYOND_LATIN1 = frozenset(char for letter in _LETTERS for char in (letter, letter.upper()) if ord(char) > 0xFF)


# --- detection ---------------------------------------------------------------------------------------

_MIN_LEGACY_WORDS = 2  # fewer legacy-only words than this is no evidence
_DOMINANCE = 3  # legacy-only words must outnumber Unicode-only words this many times


@lru_cache(maxsize=65536)
def _vote(word: str, encoding: str) -> int:
    """+1: the word reads as Vietnamese only in `encoding`; -1: only as Unicode; 0: no evidence."""
    if any(char in _BEYOND_LATIN1 for char in word):
        return -1
    if word.isascii():
        return 0
    table = _table(encoding)
    fully_mapped = table.pattern.sub("", word).isascii()
    as_legacy = fully_mapped and _is_syllable(to_unicode(word, encoding))
    as_unicode = _is_syllable(word)
    if as_legacy and not as_unicode:
        # A lone legacy symbol ("«", "·") is punctuation far more often than a one-letter word.
        return 1 if any(char.isascii() and char.isalpha() for char in word) else 0
    if as_unicode and not as_legacy:
        return -1
    return 0


@lru_cache(maxsize=8192)
def _text_votes(text: str) -> tuple[tuple[int, int], ...]:
    """(legacy words, Unicode words) of one cell's text for each encoding. Cached: the titles and headers
    of the form repeat from one unit's copy to the next, so most cells are judged once per run."""
    text = unicodedata.normalize("NFC", text)
    votes = []
    for encoding in ENCODINGS:
        legacy = unicode = 0
        for match in _table(encoding).word.finditer(text):
            vote = _vote(match.group(), encoding)
            legacy, unicode = legacy + (vote > 0), unicode + (vote < 0)
        votes.append((legacy, unicode))
    return tuple(votes)


def detect(texts: Iterable[str]) -> str | None:
    """The legacy encoding ("tcvn3" or "vni") the texts of one sheet are typed in, or None for Unicode
    (and for text with no Vietnamese letters at all: ASCII, numbers, English).

    Every word holding a character beyond ASCII is judged once per encoding: it is a legacy word when
    it is not a Vietnamese syllable as it stands but becomes one after conversion (every non-ASCII
    character taken by the table), and a Unicode word when it is a syllable as it stands but not after
    conversion, or when it holds a Vietnamese letter outside Latin-1 (ộ, ư, đ: never in legacy text).
    Words that read well both ways, or neither way, count for nothing. An encoding is chosen when at
    least two words are legacy words and they outnumber the Unicode words three to one; a real
    Vietnamese word is always a syllable as it stands, so Unicode Vietnamese never gets a legacy word.
    """
    scores = dict.fromkeys(ENCODINGS, (0, 0))
    for text in texts:
        if not isinstance(text, str) or text.isascii():
            continue
        for encoding, (legacy, unicode) in zip(ENCODINGS, _text_votes(text), strict=True):
            before = scores[encoding]
            scores[encoding] = before[0] + legacy, before[1] + unicode
    found = [(legacy - _DOMINANCE * unicode, encoding) for encoding, (legacy, unicode) in scores.items()
             if legacy >= _MIN_LEGACY_WORDS and legacy >= _DOMINANCE * unicode]
    found.sort(reverse=True)
    if not found or (len(found) > 1 and found[0][0] == found[1][0]):
        return None
    return found[0][1]

"""Text folding used to match labels, unit names and file names.

Staff type the same words with and without diacritics, in any case, with stray punctuation,
and macOS hands us NFD file names; every comparison therefore goes through `fold`.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_NON_ALNUM = re.compile(r"[^0-9a-z]+")

# Abbreviations units write in names; expanded so "ĐH Thủ Dầu Một" equals "Đại học Thủ Dầu Một".
_ABBREVIATIONS = {
    "dh": "dai hoc",
    "cd": "cao dang",
    "tp": "thanh pho",
    "tx": "thi xa",
    "tn": "thanh nien",
    "hd": "huyen doan",
    "td": "thanh doan",
    "dn": "doanh nghiep",
}


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# Combining marks (U+0300–U+036F cover every Vietnamese tone and vowel mark) dropped in one translate.
_MARKS = {code: None for code in range(0x0300, 0x0370)}
_MARKS.update({ord("đ"): "d", ord("Đ"): "D"})


@lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Lower-case ASCII words separated by single spaces: no diacritics, đ→d, no punctuation."""
    stripped = unicodedata.normalize("NFD", text).translate(_MARKS)
    return _NON_ALNUM.sub(" ", stripped.lower()).strip()


def fold_name(text: str) -> str:
    """`fold` plus abbreviation expansion, for unit names and aliases."""
    words = fold(text).split()
    return " ".join(_ABBREVIATIONS.get(word, word) for word in words)

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
_MARKS: dict[int, str | None] = {code: None for code in range(0x0300, 0x0370)}
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


# Characters that must never reach an exported text: C0 and C1 controls, DEL, the Unicode line and
# paragraph separators (spreadsheets and CSV readers break records on them), and lone surrogates
# (what Python makes of bytes in a file name that are not UTF-8). Tab is a control too: in a name it
# can only be a mistake, and at the start of a CSV cell it can make a spreadsheet start a formula.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, as os.fsdecode's surrogateescape keeps it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control character, line separator and undecodable byte written as a visible
    escape (`\\r`, `\\x01`, `\\xe1`, `\\u2028`): one line that no spreadsheet or CSV reader splits."""
    return _UNPRINTABLE.sub(_escape, text) if _UNPRINTABLE.search(text) else text


def display_name(os_name: str) -> str:
    """A file or folder name as the system gave it (str, undecodable bytes as surrogates) → the name
    users, exports and the ledger see: NFC, printable, always encodable as UTF-8."""
    return printable(nfc(os_name))

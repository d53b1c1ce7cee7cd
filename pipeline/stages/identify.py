"""Which unit sent a file: the unit line of the form first, then the file name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.core.issues import Issue, make_issue
from pipeline.core.registry import Registry
from pipeline.core.textnorm import fold, fold_name
from pipeline.core.token import TOKEN_SHEET
from pipeline.core.token import verify as verify_token

if TYPE_CHECKING:
    from pipeline.stages.normalize import Submission

# Words that say "executive committee" and nothing about which unit.
_NOISE = re.compile(r"\b(?:bch|ban chap hanh)\b")
# File-name words that are about the report, not the unit.
_FILE_NOISE = re.compile(
    r"\b(?:bao cao|bc|bieu mau|mau|phat trien dang|ptd|ket qua|so lieu|lan \d+|ban \d+|v\d+|final|xlsx?|ods|"
    r"xlsm|copy|sua|moi|nam \d{4}|20\d\d|\d+)\b"
)


@dataclass(frozen=True)
class Identification:
    code: str  # empty when not identified
    source: str  # "unit_line" | "file_name" | ""
    candidates: tuple[str, ...] = ()  # codes that tied, for an ambiguous text
    text: str = ""  # the text that was matched or that tied
    conflict: str = ""  # a code the file name suggests when it differs from the unit line's


class UnitMatcher:
    """Longest whole-word match of a unit's folded names inside a folded text; ties are ambiguous.

    Names are indexed by their word sequence, so a match looks up the text's word windows instead of
    scanning every unit: the same cost for 18 units or 10,000.
    """

    def __init__(self, registry: Registry) -> None:
        self._index: dict[str, list[str]] = {}  # folded name → unit codes carrying it
        for unit in registry.units:
            names = {unit.name, *unit.aliases} | ({unit.code} if len(unit.code) >= 3 else set())
            for name in names:
                folded = " ".join(_NOISE.sub(" ", fold_name(name)).split())
                # Also written as one word, as file names have it ("BenCat", "dautieng").
                for key in {folded, folded.replace(" ", "")} if folded else set():
                    codes = self._index.setdefault(key, [])
                    if unit.code not in codes:
                        codes.append(unit.code)
        self._longest = max((len(n.split()) for n in self._index), default=0)

    def match(self, text: str) -> tuple[str, tuple[str, ...]]:
        """(code, ()) on a unique match, ("", candidates) when ambiguous, ("", ()) when nothing."""
        words = _NOISE.sub(" ", fold_name(text)).split()
        for length in range(min(self._longest, len(words)), 0, -1):
            found: list[str] = []
            for start in range(len(words) - length + 1):
                for code in self._index.get(" ".join(words[start:start + length]), ()):
                    if code not in found:
                        found.append(code)
            if len(found) == 1:
                return found[0], ()
            if found:
                return "", tuple(found)
        return "", ()


def split_camel_case(text: str) -> str:
    """A space where a lower-case letter meets a capital: the word boundary of a name written without
    spaces ("BenCat" → "Ben Cat", "ThuDauMot" → "Thu Dau Mot")."""
    return "".join(f" {ch}" if i and ch.isupper() and text[i - 1].islower() else ch for i, ch in enumerate(text))

# What is left of the blank form's unit line ("BCH .........", "BCH Đoàn ……") once its words are gone.
_PLACEHOLDER_WORDS = re.compile(r"\b(?:bch|ban chap hanh|doan|huyen doan|thanh doan|thi doan|doan truong|"
                                r"don vi|ten don vi|co so)\b")


def is_placeholder(unit_line: str) -> bool:
    """A unit line that is the form's placeholder, left as it was: no unit named in it."""
    rest = _PLACEHOLDER_WORDS.sub(" ", fold(unit_line))
    return not re.sub(r"[\W_]+", "", rest)


def identify(unit_line: str, file_name: str, matcher: UnitMatcher) -> Identification:
    stem = file_name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    file_text = _FILE_NOISE.sub(" ", fold_name(split_camel_case(stem).replace("_", " ")))
    line_code, line_ties = matcher.match(unit_line) if unit_line else ("", ())
    file_code, file_ties = matcher.match(file_text)
    if line_code:
        conflict = file_code if file_code and file_code != line_code else ""
        return Identification(line_code, "unit_line", text=unit_line, conflict=conflict)
    if line_ties:
        # The file name may settle a tie the unit line left open.
        if file_code in line_ties:
            return Identification(file_code, "file_name", text=file_name)
        return Identification("", "", candidates=line_ties, text=unit_line)
    if file_code:
        return Identification(file_code, "file_name", text=file_name)
    if file_ties:
        return Identification("", "", candidates=file_ties, text=file_name)
    return Identification("", "")


@dataclass(frozen=True, slots=True)
class UnitFinding:
    """Which unit a submission is from, how that was known, and what the file is told about it."""

    unit: str  # "" when not identified
    source: str  # "token" | "unit_line" | "file_name" | ""
    issues: tuple[Issue, ...] = ()


def find_unit(submission: Submission, file_name: str, matcher: UnitMatcher, registry: Registry,
              edition: str) -> UnitFinding:
    """The province's token first (names may be stale or mistyped), then the unit line, then the file name."""
    issues: list[Issue] = []
    token = submission.token
    if token is not None:
        problem = verify_token(token, edition, registry.codes)
        if not problem:
            return UnitFinding(token.code, "token")
        issues.append(make_issue("token_invalid", reason=problem, sheet=TOKEN_SHEET))
    unit_line = "" if is_placeholder(submission.unit_line) else submission.unit_line
    ident = identify(unit_line, file_name, matcher)
    if not ident.code and submission.sender:
        # Sent by mail: the sender's address may be the one the registry has for a unit.
        by_address = [u.code for u in registry.units if u.email and u.email.strip().lower() == submission.sender]
        if len(by_address) == 1:
            if submission.format == "rejected":
                return UnitFinding(by_address[0], "sender", tuple(issues))
            issues.append(make_issue("unit_from_sender", sender=submission.sender, sheet=submission.sheet,
                                     cell=submission.unit_line_cell))
            return UnitFinding(by_address[0], "sender", tuple(issues))
    if submission.format == "rejected":
        # Not a workbook: the file name is all there is, and its own error says what to fix.
        return UnitFinding(ident.code, ident.source, tuple(issues))
    names, sheet, cell = registry.names, submission.sheet, submission.unit_line_cell
    if ident.code:
        if ident.source == "file_name":
            issues.append(make_issue("unit_from_file_name", unit_line=unit_line or "(không có)",
                                     sheet=sheet, cell=cell))
        if ident.conflict:
            issues.append(make_issue("unit_name_conflict", unit_line=unit_line,
                                     other=names.get(ident.conflict, ident.conflict), sheet=sheet, cell=cell))
    elif ident.candidates:
        issues.append(make_issue("unit_ambiguous", text=ident.text,
                                 candidates=", ".join(names.get(c, c) for c in ident.candidates),
                                 sheet=sheet, cell=cell, found=ident.text))
    else:
        issues.append(make_issue("unit_unknown", unit_line=unit_line or "(không có)", file=file_name,
                                 sheet=sheet, cell=cell, found=unit_line))
    return UnitFinding(ident.code, ident.source, tuple(issues))

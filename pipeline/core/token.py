"""The unit token hidden in the copies of the form the province hands out.

Each unit's copy carries a very hidden sheet naming the unit and the form edition, with a checksum
over both. Identification prefers the token to names, so a renamed file or a unit line typed
wrong still lands on the right unit; a token whose checksum does not match (someone edited it, or
copied another unit's file and changed the code) is not trusted, and names decide instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from collections.abc import Collection

TOKEN_SHEET = "tonghop_token"
TOKEN_VERSION = "1"
_SALT = "tonghop/bieu-mau"


@dataclass(frozen=True, slots=True)
class Token:
    code: str
    edition: str
    checksum: str
    version: str = TOKEN_VERSION


def checksum(code: str, edition: str, version: str = TOKEN_VERSION) -> str:
    digest = hashlib.sha256(f"{_SALT}|{version}|{edition}|{code}".encode()).hexdigest()
    return digest[:24]


def token_rows(code: str, edition: str) -> list[tuple[str, str]]:
    """The (label, value) rows of the token sheet, in order."""
    return [("tonghop", TOKEN_VERSION), ("unit", code), ("edition", edition),
            ("checksum", checksum(code, edition))]


def parse_token(grid: list[list[Any]]) -> Token | None:
    fields: dict[str, str] = {}
    for row in grid[:10]:
        if len(row) >= 2 and isinstance(row[0], str):
            value = row[1]
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            fields[row[0].strip().lower()] = str(value).strip()
    if "unit" not in fields:
        return None
    return Token(code=fields.get("unit", ""), edition=fields.get("edition", ""),
                 checksum=fields.get("checksum", ""), version=fields.get("tonghop", ""))


def verify(token: Token, edition: str, codes: Collection[str]) -> str:
    """Empty when the token can be trusted; otherwise why not, in Vietnamese."""
    if token.checksum != checksum(token.code, token.edition, token.version or TOKEN_VERSION):
        return "mã kiểm tra không khớp (mã nhận diện đã bị sửa)"
    if token.edition != edition:
        return f"mã nhận diện thuộc biểu mẫu khác ({token.edition})"
    if token.code not in codes:
        return f"mã đơn vị \"{token.code}\" không có trong danh sách đơn vị"
    return ""

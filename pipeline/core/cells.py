"""A1 addresses: column letters and cell positions, 0-based in code, as Excel writes them on screen.

The one set of address helpers of the package (the reader, the screen, the feedback copies and the
streamed sheet use them). Imports nothing from the project.
"""

from __future__ import annotations

import re

MAX_ROWS, MAX_COLUMNS = 1_048_576, 16_384  # of an .xlsx sheet
_CELL = re.compile(r"^\$?([A-Z]{1,3})\$?([1-9][0-9]{0,6})$")


def _letters(number: int) -> str:
    name = ""
    while number > 0:
        number, remainder = divmod(number - 1, 26)
        name = chr(65 + remainder) + name
    return name


_FIRST_COLUMNS = tuple(_letters(number) for number in range(1, 257))  # most lookups, without arithmetic


def column_letters(index: int) -> str:
    """0-based column index → Excel letters (0 → "A", 26 → "AA", 1023 → "AMJ")."""
    return _FIRST_COLUMNS[index] if 0 <= index < len(_FIRST_COLUMNS) else _letters(index + 1)


def column_number(letters: bytes | str) -> int:
    """Excel letters → 1-based column number ("A" → 1, "AMJ" → 1024); "" → 0."""
    number = 0
    for ch in letters.upper() if isinstance(letters, str) else letters.decode().upper():
        number = number * 26 + (ord(ch) - 64)
    return number


def address(row: int, col: int) -> str:
    """0-based row and column → "D12"."""
    return f"{column_letters(col)}{row + 1}"


def cell_position(cell: str) -> tuple[int, int] | None:
    """0-based (row, column) of an A1 address ("D12", "$D$12"); None for anything that is not one cell
    of a sheet."""
    match = _CELL.match(cell.strip().upper())
    if not match:
        return None
    col = column_number(match.group(1))
    row = int(match.group(2))
    if row > MAX_ROWS or col > MAX_COLUMNS:
        return None
    return row - 1, col - 1

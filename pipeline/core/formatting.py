"""Numbers and times as the outputs show them, Vietnamese style: "1.250", "14,3%".

The one number formatter of the package (messages, mails, change lists, feedback copies) and the
matching Excel number formats. Imports nothing from the project.
"""

from __future__ import annotations

import math
import numbers
from datetime import datetime

# Excel: thousands with "." whatever the reader's locale ("1.250", "1.250.000"), up to 999.999.999.
NUMBER_FORMAT = '[>=1000000]#"."###"."###;[>=1000]#"."###;0'
PERCENT_FORMAT = "0.0%"
LARGEST_GROUPED = 1_000_000_000  # the first number NUMBER_FORMAT does not group


def format_number(value: object) -> str:
    """1250 → "1.250", rounded to a whole number; None → "–"; anything else (a text) as it is."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        return str(value)
    return f"{int(round(value)):,}".replace(",", ".")


def format_percent(ratio: float | None, digits: int = 1) -> str:
    """0.1434 → "14,3%" (`digits` after the comma; 0 → "14%"); None → "–"."""
    if ratio is None:
        return "–"
    return f"{ratio * 100:.{digits}f}".replace(".", ",") + "%"


def modified_at(mtime: float) -> str:
    """A file time as local ISO 8601 with its offset, to the second: "2024-02-10T08:30:00+07:00"."""
    return datetime.fromtimestamp(mtime).astimezone().isoformat(timespec="seconds")

"""Atomic file writes: every file the package writes appears whole or not at all.

A file is written beside its target under a temporary name, flushed to disk, and renamed into place
in one step, so a reader (the board opening tong_hop.xlsx, the mailer attaching a copy, a crash and
the next run) never sees half of it. Imports nothing from the project.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


# Names Windows refuses for a file whatever its extension ("CON.xlsx" is the console), and the characters
# it refuses in a name; a name may not end with a dot or a space either.
_RESERVED_NAMES = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                             *(f"lpt{i}" for i in range(10)), "conin$", "conout$"})
_ILLEGAL_CHARACTERS = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
NAME_LIMIT = 80  # characters of a stem: keeps outbox\<run>\phan_hoi\<name> well under Windows' 260


def portable_name(stem: str, suffix: str = "", replacement: str = "_", fallback: str = "tep") -> str:
    """`stem + suffix` as a file name every system accepts, Windows included: its illegal characters
    replaced, no trailing dot or space, no reserved device name (prefixed with `_`), at most NAME_LIMIT
    characters before the suffix."""
    name = _ILLEGAL_CHARACTERS.sub(replacement, stem)[:NAME_LIMIT].rstrip(" .").lstrip(" ") or fallback
    if name.split(".")[0].rstrip(" ").lower() in _RESERVED_NAMES:
        name = "_" + name
    return name + suffix


@contextmanager
def atomic_target(path: Path | str) -> Iterator[Path]:
    """A temporary path beside `path` for a writer that wants a file name (xlsxwriter, for one); the
    file written there is synced and renamed onto `path` when the block ends without an exception,
    and removed otherwise."""
    with _replacing(Path(path)) as temporary:
        yield temporary
        _fsync_by_name(temporary)


@contextmanager
def open_atomic(path: Path | str, mode: str = "wb", **kwargs) -> Iterator[IO]:
    """`open(temporary, mode, **kwargs)`, for streaming a large file (the CSV exports) row by row; the
    handle is flushed and synced, and the file renamed onto `path`, when the block ends cleanly."""
    if not mode.startswith("w"):
        raise ValueError(f"open_atomic writes a new file, not mode {mode!r}")
    with _replacing(Path(path)) as temporary:
        with open(temporary, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def write_file_atomic(path: Path | str, data: bytes) -> Path:
    """`data` as the whole content of `path`, atomically."""
    with open_atomic(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def fsync_dir(path: Path | str) -> None:
    """Make a rename inside `path` durable (best effort: not every system lets a folder be synced)."""
    _fsync_by_name(Path(path))


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    # Not created here (mkstemp would make it private, 0600): the writer creates it, under the umask,
    # with the permissions any other output of the run has.
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _fsync_by_name(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

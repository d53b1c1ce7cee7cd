"""The bundled sample inbox: its files get back the times they were "received" before a demo run.

Git keeps no modification times, and a run decides the newest submission and lateness from them, so
a fresh clone would consolidate the samples differently from the answer key in `tests/`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline.core.textnorm import nfc

REPOSITORY = Path(__file__).resolve().parents[2]
SAMPLE_INBOX = REPOSITORY / "inbox"
SAMPLE_TIMES = REPOSITORY / "tests" / "sample_inbox_expected.json"  # the answer key holds each file's time


@dataclass(frozen=True)
class Restored:
    files: int
    missing: tuple[str, ...]  # sample files the answer key names but the inbox lacks


def restore_received_times(inbox: Path = SAMPLE_INBOX, times: Path = SAMPLE_TIMES) -> Restored:
    """Set each sample file's modification time to the one recorded for it."""
    document = json.loads(times.read_text(encoding="utf-8"))
    on_disk = {nfc(p.name): p for p in inbox.iterdir() if p.is_file()}
    missing = []
    restored = 0
    for name, entry in document["files"].items():
        path = on_disk.get(name)
        if path is None:
            missing.append(name)
            continue
        stamp = datetime.fromisoformat(entry["mtime"]).timestamp()
        os.utime(path, (stamp, stamp))
        restored += 1
    return Restored(restored, tuple(missing))

"""Where one `tonghop run` spends its time, stage by stage, in process.

    python benchmarks/stages.py --inbox INBOX --registry REGISTRY --outbox OUTBOX [--json FILE]

Runs exactly what `tonghop run --force` runs (pipeline.nightly.job.nightly_run) with timers wrapped
around the functions each stage goes through, found by name in their modules. Times are inclusive
(a stage contains its sub-stages). The log of a run has no stage timings, hence this harness.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # before any import, so the imports of the command are measured too

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402


def peak_mb() -> float:
    """VmHWM of this process: it only grows, so the stage that raised it is the one it first shows after."""
    try:
        with open("/proc/self/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


class Clock:
    """Inclusive seconds and call counts per stage label."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.peak_mb: dict[str, float] = {}  # the process's peak resident set when the stage last ended

    def add(self, label: str, seconds: float) -> None:
        self.seconds[label] = self.seconds.get(label, 0.0) + seconds
        self.calls[label] = self.calls.get(label, 0) + 1
        if self.calls[label] == 1 or seconds > 0.05:  # per-file steps run thousands of times; sample the big ones
            self.peak_mb[label] = peak_mb()

    def wrap(self, owner: Any, attribute: str, label: str, before: Callable[[], None] | None = None) -> None:
        original = getattr(owner, attribute, None)
        if original is None:
            return  # this version of the pipeline has no such step; the stage is simply not reported
        clock = self

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is not threading.main_thread():
                # Background work (the registry and the validation warm-up while files are read) is off the
                # critical path: listed apart, under its own heading.
                start = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    clock.add(f"in a background thread while reading/{label}", time.perf_counter() - start)
            clock.seconds.setdefault(label, 0.0)  # entered first, listed first: a stage before its parts
            start = time.perf_counter()
            try:
                if before is not None:
                    before()
                return original(*args, **kwargs)
            finally:
                clock.add(label, time.perf_counter() - start)

        setattr(owner, attribute, timed)


def instrument(clock: Clock) -> None:
    import pipeline.nightly.job
    import pipeline.nightly.ledger
    import pipeline.outputs.csvexport
    import pipeline.outputs.feedback
    import pipeline.outputs.runfolder
    import pipeline.outputs.workbook
    import pipeline.parallel.pool
    import pipeline.read.isolated
    import pipeline.run
    import pipeline.stages.validate

    nightly, run = pipeline.nightly.job, pipeline.run
    folder, csvs = pipeline.outputs.runfolder, pipeline.outputs.csvexport
    imported: set[str] = set()

    def import_once(label: str, *modules: str) -> Callable[[], None]:
        # The pipeline imports pandas/pandera and xlsxwriter lazily inside these stages; timing the import
        # on its own separates a one-off cost from the work that grows with the inbox.
        def load() -> None:
            if label in imported:
                return
            imported.add(label)
            clock.seconds.setdefault(label, 0.0)
            start = time.perf_counter()
            for module in modules:
                __import__(module)
            clock.add(label, time.perf_counter() - start)
        return load

    clock.wrap(nightly, "load_form", "load form")
    clock.wrap(run, "load_registry", "load registry")
    clock.wrap(nightly, "scan", "scan inbox")
    clock.wrap(nightly, "fingerprint", "fingerprint")
    clock.wrap(nightly, "process", "process")
    # Every map of the reader pool: the reading, inside "process", and the re-reading for feedback copies.
    clock.wrap(pipeline.parallel.pool.Pool, "map", "isolated workers (read, re-read)")
    clock.wrap(run, "UnitMatcher", "process/per file: identify (build matcher)")
    clock.wrap(run, "find_unit", "process/per file: identify (match)")
    clock.wrap(run, "validate_all", "process/validate")
    clock.wrap(pipeline.stages.validate, "validate", "process/validate/pandera",
               before=import_once("process/validate/pandera/import pandas+pandera", "pandas", "pandera.pandas"))
    clock.wrap(pipeline.stages.validate, "build_frame", "process/validate/pandera/build frame")
    clock.wrap(run, "assess", "process/per file: assess")
    clock.wrap(run, "consolidate", "process/consolidate")
    clock.wrap(nightly, "snapshot_of", "ledger/snapshot of the run")
    clock.wrap(nightly, "diff", "changes since last run")
    clock.wrap(pipeline.read.isolated.ReaderPool, "read_all", "re-read sheets for feedback copies")
    clock.wrap(nightly, "start_workbook", "write run folder/tong_hop.xlsx (in process, or start of the child)",
               before=import_once("write run folder/import xlsxwriter", "xlsxwriter"))
    clock.wrap(pipeline.outputs.workbook, "build_workbook", "write run folder/tong_hop.xlsx/build")
    clock.wrap(nightly, "write_exports", "write run folder/exports")
    clock.wrap(folder, "write_csvs", "write run folder/exports/csv")
    clock.wrap(folder, "write_feedback", "write run folder/exports/feedback copies")
    clock.wrap(folder, "write_summary", "write run folder/exports/summary.json")
    clock.wrap(csvs, "write_csv_atomic", "write run folder/exports/csv/one file")
    clock.wrap(nightly, "build_mails", "write run folder/mail (.eml)")
    clock.wrap(nightly, "publish_run_folder", "write run folder/publish")
    for method in ("start_run", "last_completed", "snapshot", "complete_run"):
        clock.wrap(pipeline.nightly.ledger.Ledger, method, f"ledger/{method}")
    # Saved while the workbook is being written.
    for method in ("save_snapshot", "record_files"):
        clock.wrap(pipeline.nightly.ledger.Ledger, method, f"write run folder/ledger {method}")
    clock.wrap(nightly, "deliver_pending", "deliver mail")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inbox", type=Path, required=True)
    parser.add_argument("--registry", type=Path, required=True)
    parser.add_argument("--outbox", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the timings here as JSON")
    args = parser.parse_args(argv)

    clock = Clock()
    start = time.perf_counter()
    import pipeline.cli  # noqa: F401  (what the command loads before it runs)
    from pipeline.core.config import load_config
    from pipeline.nightly.job import nightly_run

    clock.add("imports", time.perf_counter() - start)
    instrument(clock)
    config = load_config(None).with_paths(inbox=args.inbox, outbox=args.outbox, registry=args.registry)
    if args.workers:
        config = config.with_report(workers=args.workers)
    clock.seconds.setdefault("nightly run", 0.0)
    start = time.perf_counter()
    result = nightly_run(config, force=True)
    clock.add("nightly run", time.perf_counter() - start)
    finished = time.perf_counter()
    # What nightly_run does outside every wrapped step (filtering the scan, bookkeeping) shows as the remainder.
    direct = ("load form", "load registry", "scan inbox", "fingerprint", "process", "changes since last run",
              "write run folder", "deliver mail")
    inside = sum(clock.seconds.get(label, 0.0) for label in direct) + sum(
        seconds for label, seconds in clock.seconds.items() if label.startswith("ledger/"))
    clock.seconds["nightly run/other (not in a stage above)"] = clock.seconds["nightly run"] - inside
    clock.calls["nightly run/other (not in a stage above)"] = 1
    counts: dict[str, int] = {}
    if result.consolidation is not None:
        for outcome in result.consolidation.files:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
    data = {
        "in_process_seconds": finished - STARTED,
        "stages": {label: round(seconds, 4) for label, seconds in clock.seconds.items()},
        "calls": clock.calls,
        "peak_mb_after": {label: round(mb, 1) for label, mb in clock.peak_mb.items()},
        "files": counts,
        "folder": str(result.folder) if result.folder else "",
    }
    if args.json:
        args.json.write_text(json.dumps(data, indent=1), encoding="utf-8")
    else:
        width = max(map(len, clock.seconds))
        for label, seconds in clock.seconds.items():
            print(f"{label:<{width}}  {seconds:8.3f} s  ({clock.calls[label]} calls)  "
                  f"peak {clock.peak_mb.get(label, 0):6.0f} MB")
        print(f"{'in process':<{width}}  {data['in_process_seconds']:8.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

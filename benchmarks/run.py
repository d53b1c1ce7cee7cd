"""Time tonghop against the floor and the naive script on generated inboxes.

    python benchmarks/run.py --sizes 1000 10000 --repeat 3

For each size: generate the inbox (cached under --cache-dir/N unless --regenerate), check once that
tonghop judges every file as the generator intended, then run tonghop, the floor and the naive
script (naive only up to --naive-max files) as fresh subprocesses, alternating their order from one
repetition to the next so that a noisy neighbour hurts all three alike. Each run gets a fresh
outbox. Reported per tool: median wall time, CPU time, and peak memory — of the main process, and
of its whole process tree (tonghop forks reader workers) both as the largest sum of resident sets
seen at one moment and as the sum of proportional set sizes (which counts pages the forked workers
share with their parent once). tonghop's stage split (read, validate, consolidate, write) comes
from the log each timed run writes; a finer split comes from benchmarks/stages.py.

Prints a Markdown report and writes the numbers to --results (default benchmarks/results.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = VENV_BIN / "python" if (VENV_BIN / "python").exists() else Path(sys.executable)
TONGHOP = VENV_BIN / "tonghop"
TOOLS = ("tonghop", "floor", "naive")
STAGES = ("read", "validate", "consolidate", "write")
_LOG_STAGES = re.compile(r"stages (.*)$")


# ---------------------------------------------------------------------------------------------- memory

def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses; the fields after its last ")" do not.
        fields = stat[stat.rindex(b")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def _tree(root: int) -> set[int]:
    children = _children_map()
    found, stack = set(), [root]
    while stack:
        pid = stack.pop()
        if pid not in found:
            found.add(pid)
            stack.extend(children.get(pid, ()))
    return found


def _status_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KB; (0, 0) once the process is gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0, 0
    return rss, hwm


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class TreeSampler(threading.Thread):
    """Polls /proc for a process and its descendants; the peaks it saw, in KB.

    One sample reads the processes one after the other, so a fork or an exit in between can count the
    pages they share twice (a child's share read just before it exits, then its parent's whole set);
    a sum counts towards the peak only when the next sample confirms it (the smaller of the two).
    """

    def __init__(self, root: int, interval: float = 0.02, rescan_every: int = 5) -> None:
        super().__init__(daemon=True)
        self.root, self.interval, self.rescan_every = root, interval, rescan_every
        self.done = threading.Event()
        self.hwm: dict[int, int] = {}
        self.tree_rss_peak = 0
        self.tree_pss_peak = 0
        self.processes_seen = 0

    def run(self) -> None:
        known: set[int] = {self.root}
        tick = 0
        last_rss = last_pss = 0
        while not self.done.is_set():
            if tick % self.rescan_every == 0:
                # Scanning /proc costs ~1 ms; workers live for the whole read, so a coarser rescan finds them.
                known |= _tree(self.root)
            tick += 1
            rss_sum = pss_sum = 0
            for pid in sorted(known, key=lambda p: p != self.root):  # the parent first, then its children
                rss, hwm = _status_kb(pid)
                if not rss and not hwm:
                    continue
                self.hwm[pid] = max(self.hwm.get(pid, 0), hwm)
                rss_sum += rss
                pss_sum += _pss_kb(pid)
            self.tree_rss_peak = max(self.tree_rss_peak, min(rss_sum, last_rss))
            self.tree_pss_peak = max(self.tree_pss_peak, min(pss_sum, last_pss))
            last_rss, last_pss = rss_sum, pss_sum
            self.processes_seen = max(self.processes_seen, len(self.hwm))
            self.done.wait(self.interval)


@dataclass
class Measurement:
    tool: str
    n: int
    seconds: float
    cpu_seconds: float  # user + system of the process and every descendant it waited for
    returncode: int
    main_peak_mb: float  # VmHWM of the process itself
    max_process_mb: float  # the largest peak of any one process of the tree (kernel's ru_maxrss)
    tree_rss_peak_mb: float  # largest sum of resident sets over the tree seen at one moment
    tree_pss_peak_mb: float  # the same with proportional set sizes: shared pages counted once
    processes: int
    load_average: float
    source: str = ""  # digest of pipeline/*.py when the run started; a benchmark may straddle a change
    stages: dict[str, float] = field(default_factory=dict)
    output: str = ""


def measure(tool: str, n: int, command: list[str], cwd: Path, log: Path) -> Measurement:
    load = os.getloadavg()[0]
    with open(log, "wb") as sink:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT)
        sampler = TreeSampler(process.pid)
        sampler.start()
        # wait4 rather than Popen.wait: it returns the rusage of the child and its reaped descendants.
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        sampler.done.set()
        sampler.join()
    mb = 1 / 1024
    return Measurement(
        tool=tool, n=n, seconds=seconds, cpu_seconds=usage.ru_utime + usage.ru_stime,
        returncode=process.returncode, main_peak_mb=sampler.hwm.get(process.pid, 0) * mb,
        max_process_mb=usage.ru_maxrss * mb, tree_rss_peak_mb=sampler.tree_rss_peak * mb,
        tree_pss_peak_mb=sampler.tree_pss_peak * mb, processes=sampler.processes_seen, load_average=load,
        source=_pipeline_version()["source"],
        output=log.read_text(encoding="utf-8", errors="replace")[-2000:],
    )


# ---------------------------------------------------------------------------------------------- runs

def ensure_inbox(n: int, cache: Path, seed: int, regenerate: bool, pool: Path | None = None) -> Path:
    folder = cache / str(n)
    manifest = folder / "manifest.json"
    sys.path.insert(0, str(HERE))
    from generate import POOL_VERSION

    if not regenerate and manifest.exists():
        data = json.loads(manifest.read_text(encoding="utf-8"))
        inbox = folder / "inbox"
        if data.get("n") == n and data.get("seed") == seed and data.get("pool_version") == POOL_VERSION \
                and inbox.is_dir() and sum(1 for _ in inbox.iterdir()) == n:
            return folder
    print(f"generating {n} files in {folder} …", file=sys.stderr, flush=True)
    subprocess.run([str(PYTHON), str(HERE / "generate.py"), str(n), str(folder), "--seed", str(seed),
                    "--pool", str(pool or cache / f"pool-s{seed}")], check=True, stdout=sys.stderr)
    return folder


def command_for(tool: str, data: Path, out: Path, workers: int | None) -> list[str]:
    inbox = data / "inbox"
    if tool == "tonghop":
        command = [str(TONGHOP), "run", "--inbox", str(inbox), "--outbox", str(out / "outbox"),
                   "--registry", str(data / "don_vi.xlsx"), "--force"]
        return command + (["--workers", str(workers)] if workers else [])
    script = HERE / f"{tool}.py"
    return [str(PYTHON), str(script), str(inbox), str(out / f"{tool}.xlsx")]


def run_folder(outbox: Path) -> Path | None:
    runs = [p for p in outbox.iterdir() if p.is_dir() and not p.name.startswith(".")] if outbox.is_dir() else []
    return runs[0] if len(runs) == 1 else None


def logged_stages(outbox: Path) -> dict[str, float]:
    """The stage timings tonghop writes to its log (empty when this version writes none)."""
    try:
        lines = (outbox / "tonghop.log").read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    for line in reversed(lines):
        match = _LOG_STAGES.search(line)
        if match:
            stages = {}
            for part in match.group(1).split(","):
                name, _, value = part.strip().rpartition(" ")
                if name and value.endswith("s"):
                    stages[name] = float(value[:-1])
            return stages
    return {}


def statuses(folder: Path) -> dict[str, int]:
    import csv

    counts: dict[str, int] = {}
    with open(folder / "submissions.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


def fine_stages(data: Path, scratch: Path, workers: int | None) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix="stages-", dir=scratch))
    try:
        target = out / "stages.json"
        command = [str(PYTHON), str(HERE / "stages.py"), "--inbox", str(data / "inbox"), "--registry",
                   str(data / "don_vi.xlsx"), "--outbox", str(out / "outbox"), "--json", str(target)]
        if workers:
            command += ["--workers", str(workers)]
        started = time.perf_counter()
        subprocess.run(command, cwd=out, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        result = json.loads(target.read_text(encoding="utf-8"))
        result["wall_seconds"] = wall
        result["stages"]["interpreter start and exit"] = round(wall - result["in_process_seconds"], 4)
        return result
    finally:
        shutil.rmtree(out, ignore_errors=True)


def benchmark_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    data = ensure_inbox(n, args.cache_dir, args.seed, args.regenerate, args.pool_dir)
    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    scratch = args.cache_dir / "runs"
    scratch.mkdir(parents=True, exist_ok=True)
    tools = [t for t in TOOLS if t in args.tools and (t != "naive" or n <= args.naive_max)]
    sys.path.insert(0, str(HERE))
    from generate import verify_run

    # One untimed pass of the floor puts the inbox in the page cache for everyone.
    warm = Path(tempfile.mkdtemp(prefix="warm-", dir=scratch))
    subprocess.run(command_for("floor", data, warm, None), check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(warm, ignore_errors=True)

    runs: dict[str, list[Measurement]] = {t: [] for t in tools}
    verification: dict[str, Any] = {}
    fine: list[dict[str, Any]] = []
    repeat = args.repeat if n <= args.naive_max or args.large_repeat is None else args.large_repeat
    for repetition in range(repeat):
        order = tools[repetition % len(tools):] + tools[:repetition % len(tools)]
        for tool in order:
            out = Path(tempfile.mkdtemp(prefix=f"{tool}-{n}-", dir=scratch))
            try:
                m = measure(tool, n, command_for(tool, data, out, args.workers), out, out / "output.txt")
                if m.returncode != 0:
                    raise SystemExit(f"{tool} failed on {n} files (exit {m.returncode}):\n{m.output}")
                if tool == "tonghop":
                    m.stages = logged_stages(out / "outbox")
                    if not verification:
                        folder = run_folder(out / "outbox")
                        if folder is None:
                            raise SystemExit(f"tonghop wrote no run folder:\n{m.output}")
                        problems = verify_run(data, folder)
                        kept = data / "last-run"
                        shutil.rmtree(kept, ignore_errors=True)
                        shutil.copytree(folder, kept)
                        verification = {"problems": len(problems), "first_problems": problems[:10],
                                        "statuses": statuses(folder), "run_folder": str(kept)}
                runs[tool].append(m)
                print(f"  {n:>6} files  {tool:<8} {m.seconds:7.2f} s  cpu {m.cpu_seconds:7.2f} s  "
                      f"main {m.main_peak_mb:6.0f} MB  tree {m.tree_pss_peak_mb:6.0f} MB (PSS)  "
                      f"load {m.load_average:.2f}", file=sys.stderr, flush=True)
            finally:
                shutil.rmtree(out, ignore_errors=True)
        if args.fine_stages and "tonghop" in tools:
            fine.append(fine_stages(data, scratch, args.workers))
    return {
        "n": n,
        "inbox": str(data / "inbox"),
        "generated": _describe_inbox(manifest),
        "verification": verification,
        "runs": {tool: [asdict(m) | {"output": ""} for m in ms] for tool, ms in runs.items()},
        "median": {tool: _medians(ms) for tool, ms in runs.items()},
        "fine_stages": _fine_medians(fine),
    }


def _describe_inbox(manifest: dict[str, Any]) -> dict[str, Any]:
    formats: dict[str, int] = {}
    expected: dict[str, int] = {}
    defects: dict[str, int] = {}
    for entry in manifest["files"]:
        ext = entry["file"].rsplit(".", 1)[-1]
        formats[ext] = formats.get(ext, 0) + 1
        expected[entry["expected_status"]] = expected.get(entry["expected_status"], 0) + 1
        if entry["defect"]:
            defects[entry["defect"]] = defects.get(entry["defect"], 0) + 1
    return {"files": len(manifest["files"]), "formats": formats, "expected": expected, "defects": defects,
            "templates": len({e["template"] for e in manifest["files"]})}


def _medians(ms: list[Measurement]) -> dict[str, Any]:
    if not ms:
        return {}
    keys = ("seconds", "cpu_seconds", "main_peak_mb", "max_process_mb", "tree_rss_peak_mb", "tree_pss_peak_mb")
    result: dict[str, Any] = {k: statistics.median(getattr(m, k) for m in ms) for k in keys}
    result["min_seconds"] = min(m.seconds for m in ms)
    result["max_seconds"] = max(m.seconds for m in ms)
    result["runs"] = len(ms)
    result["sources"] = sorted({m.source for m in ms})
    names = {name for m in ms for name in m.stages}
    result["stages"] = {name: statistics.median(m.stages[name] for m in ms if name in m.stages)
                        for name in sorted(names, key=lambda s: STAGES.index(s) if s in STAGES else 99)}
    return result


def _fine_medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    if not runs:
        return {}
    labels: list[str] = []
    for run in runs:
        labels.extend(label for label in run["stages"] if label not in labels)
    return {"runs": len(runs),
            "wall_seconds": statistics.median(r["wall_seconds"] for r in runs),
            "stages": {label: statistics.median(r["stages"][label] for r in runs if label in r["stages"])
                       for label in labels},
            "calls": runs[-1]["calls"],
            "peak_mb_after": runs[-1].get("peak_mb_after", {})}


# ---------------------------------------------------------------------------------------------- report

GOALS = {
    # (size, description, check)
    "tonghop ≤ 4 × floor at 1,000 files": (1000, lambda r: r["ratios"].get("tonghop_over_floor", 1e9) <= 4),
    "naive ≥ 4 × tonghop at 1,000 files": (1000, lambda r: r["ratios"].get("naive_over_tonghop", 0) >= 4),
    "tonghop ≤ 2.5 × floor at 10,000 files": (10000, lambda r: r["ratios"].get("tonghop_over_floor", 1e9) <= 2.5),
    "tonghop peak memory ≤ 500 MB at 10,000 files (tree, PSS)":
        (10000, lambda r: r["median"]["tonghop"].get("tree_pss_peak_mb", 1e9) <= 500),
}


def add_ratios(result: dict[str, Any]) -> None:
    med = result["median"]
    ratios: dict[str, float] = {}
    if med.get("tonghop") and med.get("floor"):
        ratios["tonghop_over_floor"] = med["tonghop"]["seconds"] / med["floor"]["seconds"]
    if med.get("naive") and med.get("tonghop"):
        ratios["naive_over_tonghop"] = med["naive"]["seconds"] / med["tonghop"]["seconds"]
    result["ratios"] = ratios


def markdown(results: dict[str, Any]) -> str:
    sizes = results["sizes"]
    runs = sorted({r["median"][t]["runs"] for r in sizes.values() for t in r["median"] if r["median"][t]})
    lines = [f"Median of {' or '.join(map(str, runs))} alternating runs per tool, each a fresh process; "
             f"{results['machine']['cpus']} CPUs, Python {results['machine']['python']}. "
             "Memory: peak resident set of the main process / of the whole process tree (proportional set "
             "size, shared pages counted once).", "",
             "| Files | tonghop | floor | naive | tonghop ÷ floor | naive ÷ tonghop | tonghop memory | "
             "floor memory | naive memory |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def cell(med: dict[str, Any], key: str = "seconds") -> str:
        return f"{med[key]:.2f} s" if med else "–"

    def memory(med: dict[str, Any], tree: bool = False) -> str:
        if not med:
            return "–"
        if tree:
            return f"{med['main_peak_mb']:.0f} / {med['tree_pss_peak_mb']:.0f} MB"
        return f"{med['main_peak_mb']:.0f} MB"

    for key in sorted(sizes, key=int):
        r = sizes[key]
        med, ratios = r["median"], r["ratios"]
        lines.append(
            f"| {int(key):,} | {cell(med.get('tonghop', {}))} | {cell(med.get('floor', {}))} | "
            f"{cell(med.get('naive', {}))} | "
            + (f"{ratios['tonghop_over_floor']:.1f}×" if "tonghop_over_floor" in ratios else "–") + " | "
            + (f"{ratios['naive_over_tonghop']:.1f}×" if "naive_over_tonghop" in ratios else "–") + " | "
            + f"{memory(med.get('tonghop', {}), tree=True)} | {memory(med.get('floor', {}))} | "
            + f"{memory(med.get('naive', {}))} |")
    scaling = results.get("scaling", {})
    if scaling:
        lines += ["", "tonghop scaling: " + "; ".join(f"{k}: {v:.1f}×" for k, v in scaling.items())]

    staged = [k for k in sorted(sizes, key=int) if sizes[k]["median"].get("tonghop", {}).get("stages")]
    if staged:
        names = list(sizes[staged[-1]]["median"]["tonghop"]["stages"])
        lines += ["", "tonghop stages (from its log, median seconds; *rest* = start-up, registry, scan, ledger, "
                  "changes, mail):", "",
                  "| Files | " + " | ".join(names) + " | rest | total |",
                  "|---:|" + "---:|" * (len(names) + 2)]
        for key in staged:
            med = sizes[key]["median"]["tonghop"]
            stages = med["stages"]
            rest = med["seconds"] - sum(stages.values())
            lines.append(f"| {int(key):,} | " + " | ".join(f"{stages.get(n, 0):.2f}" for n in names)
                         + f" | {rest:.2f} | {med['seconds']:.2f} |")
    for key in sorted(sizes, key=int):
        fine = sizes[key].get("fine_stages")
        if not fine:
            continue
        lines += ["", f"Finer split at {int(key):,} files (benchmarks/stages.py, inclusive seconds, median of "
                  f"{fine['runs']}; peak = the main process's peak resident set when the stage ended):", "",
                  "| stage | seconds | calls | peak MB |", "|---|---:|---:|---:|"]
        peaks = fine.get("peak_mb_after", {})
        for label, seconds in fine["stages"].items():
            peak = f"{peaks[label]:.0f}" if label in peaks else ""
            lines.append(f"| {label.replace('/', ' › ')} | {seconds:.3f} | {fine['calls'].get(label, '')} | {peak} |")
    sources = sorted({c for r in sizes.values() for med in r["median"].values() if med for c in med["sources"]})
    if len(sources) > 1:
        lines += ["", f"⚠ pipeline/ changed during the benchmark (source digests {', '.join(sources)}): medians "
                  "mix versions."]
    if results.get("goals"):
        lines += ["", "Goals:"]
        lines += [f"- {'✅' if ok else '❌'} {goal}" for goal, ok in results["goals"].items()]
    checks = [(k, sizes[k]["verification"]) for k in sorted(sizes, key=int) if sizes[k].get("verification")]
    if checks:
        lines += ["", "Verdicts checked against the generator: " + "; ".join(
            f"{int(k):,} files: {v['problems']} differences, statuses {v['statuses']}" for k, v in checks)]
    return "\n".join(lines)


def _pipeline_version() -> dict[str, Any]:
    """The commit measured, and whether pipeline/ had uncommitted changes: the numbers belong to that code."""
    def git(*command: str) -> str:
        try:
            return subprocess.run(["git", *command], cwd=ROOT, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        digest.update(path.read_bytes())
    commit = git("rev-parse", "--short", "HEAD")
    dirty = bool(git("status", "--porcelain", "--", "pipeline"))
    # The source digest identifies the code measured: uncommitted changes differ, a later commit of them does not.
    return {"commit": commit, "uncommitted_changes": dirty, "source": digest.hexdigest()[:12]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--large-repeat", type=int, default=None,
                        help="repetitions for sizes above --naive-max (default: --repeat)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "tonghop-bench")
    parser.add_argument("--pool-dir", type=Path, default=None,
                        help="template pool to build or reuse (default CACHE_DIR/pool-s<seed>)")
    parser.add_argument("--regenerate", action="store_true", help="write the inboxes again even when cached")
    parser.add_argument("--naive-max", type=int, default=1000, help="largest inbox the naive script runs on")
    parser.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS))
    parser.add_argument("--workers", type=int, default=None, help="tonghop --workers (default: its own)")
    parser.add_argument("--no-fine-stages", dest="fine_stages", action="store_false",
                        help="skip the in-process stage harness (benchmarks/stages.py)")
    parser.add_argument("--results", type=Path, default=HERE / "results.json")
    args = parser.parse_args(argv)
    args.cache_dir = args.cache_dir.resolve()

    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_at_start": os.getloadavg()[0]},
        "settings": {"sizes": args.sizes, "repeat": args.repeat, "large_repeat": args.large_repeat,
                     "seed": args.seed, "naive_max": args.naive_max,
                     "workers": args.workers, "cache_dir": str(args.cache_dir)},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "pipeline": _pipeline_version(),
        "sizes": {},
    }
    for n in args.sizes:
        result = benchmark_size(n, args)
        add_ratios(result)
        results["sizes"][str(n)] = result
    tonghop = {int(k): r["median"]["tonghop"]["seconds"] for k, r in results["sizes"].items()
               if r["median"].get("tonghop")}
    results["scaling"] = {f"{b:,}/{a:,} files": tonghop[b] / tonghop[a]
                          for a in sorted(tonghop) for b in sorted(tonghop) if b > a}
    goals: dict[str, bool] = {}
    for goal, (size, check) in GOALS.items():
        if str(size) in results["sizes"]:
            try:
                goals[goal] = bool(check(results["sizes"][str(size)]))
            except KeyError:
                continue
    if 1000 in tonghop and 10000 in tonghop:
        goals["tonghop 10,000 ÷ 1,000 files time ≤ 11"] = tonghop[10000] / tonghop[1000] <= 11
    results["goals"] = goals
    results["markdown"] = markdown(results)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    print(results["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

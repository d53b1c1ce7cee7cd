"""The benchmark's memory sampler: the peak of a process tree, shared pages counted once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

pytestmark = [pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="needs Linux /proc"),
              pytest.mark.skipif(not hasattr(os, "fork"), reason="not on Windows: the benchmark samples a forked tree")]

MB = 1024 * 1024

# A parent holding 100 MB forks a child that holds 100 MB of its own, exits, and the parent lives on:
# 200 MB of distinct pages at most at any moment (plus the interpreters).
TREE = textwrap.dedent("""
    import os, time
    held = b"p" * (100 * 1024 * 1024)
    time.sleep(0.3)
    child = os.fork()
    if child == 0:
        own = b"c" * (100 * 1024 * 1024)
        time.sleep(0.6)
        os._exit(0)
    os.waitpid(child, 0)
    time.sleep(0.4)
""")


def test_tree_peak_counts_shared_pages_once_across_fork_and_exit():
    from run import TreeSampler

    process = subprocess.Popen([sys.executable, "-c", TREE])
    sampler = TreeSampler(process.pid, interval=0.01, rescan_every=1)
    sampler.start()
    process.wait()
    sampler.done.set()
    sampler.join()
    peak_mb = sampler.tree_pss_peak * 1024 / MB
    assert sampler.processes_seen == 2
    assert 195 <= peak_mb <= 260, peak_mb

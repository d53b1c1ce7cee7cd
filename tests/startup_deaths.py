"""Preloaded by tests/test_parallel.py: kills a worker while it starts, as a broken installation does.

TONGHOP_TEST_START_DEATH unset: nothing happens; "always": every worker dies while starting; a path:
the first worker to start creates that file and dies, the others start normally. A forked worker runs
the check after the fork, a spawned one when it imports this module while starting."""

from __future__ import annotations

import multiprocessing
import os


def maybe_die() -> None:
    mode = os.environ.get("TONGHOP_TEST_START_DEATH")
    if not mode:
        return
    if mode != "always":
        try:
            os.close(os.open(mode, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    os._exit(7)


if multiprocessing.parent_process() is not None:
    maybe_die()
elif hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=maybe_die)

"""An installation whose reader workers cannot start: every child process of this interpreter dies at
once (exit code 9), forked or spawned. Used by tests/test_windows.py on PYTHONPATH."""

import multiprocessing
import os

if multiprocessing.parent_process() is not None:
    os._exit(9)  # a spawned worker, while it starts
elif hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: os._exit(9))

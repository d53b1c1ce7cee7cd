"""Run this Python as CPython on Windows would behave, where tonghop can tell the difference.

On PYTHONPATH with TONGHOP_SIMULATE_WINDOWS=1 (`make test-windows`, the second pass of `.ci/run`), every
interpreter started (pytest, the `tonghop` processes tests start, the spawned readers) loses the
POSIX-only devices tonghop must do without on Windows:

- no fork: multiprocessing knows only "spawn", `os.fork` and `os.register_at_fork` are gone;
- no `resource` and no `fcntl` module;
- `selectors` accepts sockets only (WinError 10038 for a pipe), as on Windows; what the standard library
  and filelock do with their own Windows code there (multiprocessing.connection.wait waiting on
  handles, subprocess, the lock file) keeps its POSIX counterpart, imported before the devices go;
- `ctypes.CDLL(None)` raises TypeError;
- the console speaks cp1252 (set by the caller: PYTHONIOENCODING=cp1252), and a text file opened by
  tonghop without naming its encoding is an error (Windows would use the ANSI code page).
"""

from __future__ import annotations

import os
import sys

if os.environ.get("TONGHOP_SIMULATE_WINDOWS") == "1":
    import ctypes
    import multiprocessing
    import multiprocessing.connection  # noqa: F401  (keeps its waiter: Windows waits on handles instead)
    import multiprocessing.context
    import selectors
    import socket
    import subprocess  # noqa: F401  (keeps its selector: Windows uses threads there)
    import warnings

    try:
        import filelock  # noqa: F401  (keeps the OS lock: Windows' msvcrt lock behaves the same way)
    except ImportError:
        pass

    # No fork.
    multiprocessing.set_start_method("spawn", force=True)
    multiprocessing.get_all_start_methods = lambda: ["spawn"]  # type: ignore[assignment]
    for method in ("fork", "forkserver"):
        multiprocessing.context._concrete_contexts.pop(method, None)  # type: ignore[attr-defined]
    for name in ("fork", "forkpty", "register_at_fork"):
        if hasattr(os, name):
            delattr(os, name)

    # No resource, no fcntl.
    sys.modules["resource"] = None  # type: ignore[assignment]
    sys.modules["fcntl"] = None  # type: ignore[assignment]

    # Sockets only (a socket object or its descriptor, as asyncio registers them).
    import stat

    def _is_socket(fileobj) -> bool:  # type: ignore[no-untyped-def]
        if isinstance(fileobj, socket.socket):
            return True
        try:
            descriptor = fileobj if isinstance(fileobj, int) else fileobj.fileno()
            return stat.S_ISSOCK(os.fstat(descriptor).st_mode)
        except (OSError, AttributeError, ValueError):
            return False

    def _sockets_only(base: type) -> type:
        class SocketsOnly(base):  # type: ignore[valid-type,misc]
            def register(self, fileobj, events, data=None):
                if not _is_socket(fileobj):
                    raise OSError(10038, "An operation was attempted on something that is not a socket")
                return super().register(fileobj, events, data)

        SocketsOnly.__name__ = SocketsOnly.__qualname__ = base.__name__
        return SocketsOnly

    for name in ("DefaultSelector", "SelectSelector", "PollSelector", "EpollSelector", "DevpollSelector",
                 "KqueueSelector"):
        if hasattr(selectors, name):
            setattr(selectors, name, _sockets_only(getattr(selectors, name)))

    # No libc by the name None.
    _cdll_init = ctypes.CDLL.__init__

    def _no_null_name(self, name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name is None:
            raise TypeError("expected str, bytes or os.PathLike object, not NoneType")
        _cdll_init(self, name, *args, **kwargs)

    ctypes.CDLL.__init__ = _no_null_name  # type: ignore[method-assign]

    # Text files opened by the program without an encoding (PYTHONWARNDEFAULTENCODING=1 makes Python say so).
    warnings.filterwarnings("error", category=EncodingWarning, module=r"pipeline(\.|$)")

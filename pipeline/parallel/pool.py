"""Every process, thread and garbage-collector device of the pipeline, behind a few small interfaces.

- `map(function, items, settings)` / `Pool`: run a named top-level function over items in persistent,
  isolated worker processes (fed in chunks, a memory cap, a per-item deadline, killed with their
  parent); the results in order, or for each item whose worker crashed, overran its deadline or ran
  out of memory, the `Failed` record holding the Issue that replaced it. When the workers themselves
  cannot work (they die while starting, or the function raises the same error for every item), the
  pool raises `WorkersBroken` instead of blaming the items.
- `note(data)`: from inside `function`, a few bytes the parent keeps for the current item should
  its worker die on it (the reader notes the sha256 of the bytes it read).
- `run_program(argv, cwd, env, timeout)`: another program run to completion, its whole process tree
  killed on the way out (LibreOffice, converting a legacy document inside a reader).
- `in_child(function, *args)`: one call in a forked copy of this process (POSIX only; `can_fork()`
  says whether it is available); `.wait()` raises here what it raised there.
- `in_background(function, *args)`: a thread of this process; `.result()` returns its value or raises.
- `gc_paused()`: no cyclic garbage collection inside the block (and the heap frozen, so a fork made
  inside it shares its pages).

Portable: workers are forked where the platform can fork and spawned elsewhere (Windows); pipes and
process sentinels are waited on with `multiprocessing.connection.wait`, which Windows supports
(`selectors` there accepts sockets only); each operating-system device is used where it exists:
RLIMIT_AS and PR_SET_PDEATHSIG on Linux, a Job Object (memory limit, killed when the parent's
handle closes) on Windows.

Nothing else in the package starts a process or a thread, or touches `gc`.
"""

from __future__ import annotations

import gc
import importlib
import inspect
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Generic, TypeVar

from pipeline.core.issues import Issue, make_issue

T = TypeVar("T")
R = TypeVar("R")

# Measured: feeding workers in chunks instead of one item per message saves ~2.5 s at 10,000 files.
CHUNK = 16  # items handed to a worker at once; small enough to rebalance, large enough to batch IPC
RESULT_BATCH = 4  # results a worker sends back in one message
NOTE_BYTES = 64  # the most a worker may `note` per item
START_DEATHS = 3  # workers dying while starting, in a row, that mean no worker can work here
SAME_ERRORS = 3  # the same error raised by `function` for this many items (and no success): the program's
START_SECONDS = 120.0  # longest a worker may take to start (a spawned one imports the readers) before it is replaced
WINDOWS_BASELINE_MB = 256  # a spawned worker's own commit, added to the memory a Job Object lets it use

_STARTING, _IDLE = -2, -1  # progress[0] besides the index of the item being worked on


@dataclass(frozen=True)
class IsolationSettings:
    workers: int = 2
    timeout_seconds: float = 30.0
    memory_mb: int = 768  # memory a worker may use on top of what it starts with


DEFAULT_SETTINGS = IsolationSettings()


@dataclass(frozen=True, slots=True)
class Failed:
    """What replaced the result of an item whose worker died on it: the Issue saying why
    (reader_crashed, reader_timeout, reader_out_of_memory), and what the worker `note`d for it."""

    issue: Issue
    note: bytes = b""


class WorkersBroken(RuntimeError):
    """No worker could do its job on this machine: they died while starting, or `function` raised the
    same error for every item. Nothing about the items is known; the message (English) names the cause.
    `sentence` is the same in Vietnamese, for the operator."""

    def __init__(self, message: str, sentence: str) -> None:
        super().__init__(message)
        self.sentence = sentence


def _check_named(function: Callable) -> None:
    """Workers find `function` by its module and name (pickled by reference under spawn; and a lambda or a
    bound method would drag its closure or instance along): a named top-level function only."""
    assert inspect.isfunction(function), f"{function!r} is not a plain function (bound method, partial, class?)"
    assert function.__name__ != "<lambda>" and "<locals>" not in function.__qualname__, \
        f"{function.__qualname__} is not a named top-level function"
    module = sys.modules.get(function.__module__)
    assert module is not None and getattr(module, function.__qualname__, None) is function, \
        f"{function.__module__}.{function.__qualname__} is not reachable by its name"


def can_fork() -> bool:
    """Whether this platform starts processes by forking (not on Windows)."""
    return "fork" in multiprocessing.get_all_start_methods()


# ---------------------------------------------------------------- inside a worker

_slots: tuple[Any, Any] | None = None  # (progress, note buffer) of the worker this process is
_current = -1  # index of the item the worker is on


def note(data: bytes) -> None:
    """Keep `data` (at most NOTE_BYTES) for the item being worked on: if the worker dies on it, its
    `Failed` record carries it. Does nothing outside a worker."""
    if _slots is None:
        return
    progress, buffer = _slots
    data = bytes(data[:NOTE_BYTES])
    buffer[:len(data)] = data
    progress[3] = len(data)
    progress[2] = _current  # after the bytes: the parent trusts them only for this item


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when the parent dies, even by SIGKILL. (On Windows the parent's Job
    Object does it; elsewhere the worker notices its parent is gone within a second.)"""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # no libc by that name, no prctl, a CDLL that refuses None: the poll below still applies
        pass


def _virtual_size() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return 0


def _cap_address_space(memory_mb: int) -> None:
    """RLIMIT_AS where there is one (POSIX): what the worker has now plus `memory_mb`."""
    try:
        import resource
    except ImportError:
        return  # Windows: the parent's Job Object limits the worker's memory instead
    try:
        cap = _virtual_size() + memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ValueError, OSError, AttributeError):
        pass  # no RLIMIT_AS here: the deadline still applies


def _silence_stderr() -> None:
    """A parser that aborts prints a Rust backtrace; the item's issue says all the user needs."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        pass


@dataclass(frozen=True, slots=True)
class _Raised:
    """`function` raised (a defect, or an installation that cannot work): its type, message and traceback."""

    kind: str
    message: str
    trace: str
    note: bytes


def _worker(conn: Connection, function: Callable, args: tuple, memory_mb: int, parent: int,
            progress: Any, buffer: Any, preload: tuple[str, ...]) -> None:
    """Call `function(item, *args)` for the items of each task; send the results back a few at a time.
    `progress` (shared memory: the index of the item being worked on, _STARTING until the worker is
    ready, _IDLE between items; when it was started; the item whose note is in `buffer`; the note's
    length) is what the parent reads to time an item out and to know which item a crash came from."""
    global _slots, _current
    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent()
    _silence_stderr()
    _cap_address_space(memory_mb)
    for module in preload:  # already imported when forked; a spawned worker imports them now, while starting
        importlib.import_module(module)
    _slots = (progress, buffer)
    progress[0] = _IDLE
    while True:
        try:
            # Under fork, workers started later hold copies of this pipe's parent end, so EOF alone cannot
            # tell us the parent is gone: poll, and check who our parent is.
            if not conn.poll(1.0):
                if os.getppid() != parent and os.name == "posix":
                    return
                continue
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        batch: list[tuple[int, Any]] = []
        for index, item in task:
            progress[2] = -1
            progress[1] = time.monotonic()
            progress[0] = _current = index
            result: Any
            try:
                result = function(item, *args)
            except MemoryError:
                result = Failed(make_issue("reader_out_of_memory"), _noted(progress, buffer, index))
            except Exception as exc:
                result = _Raised(type(exc).__name__, str(exc), traceback.format_exc(),
                                 _noted(progress, buffer, index))
            batch.append((index, result))
            if len(batch) >= RESULT_BATCH:
                conn.send(batch)
                batch = []
        progress[0] = _current = _IDLE
        if batch:
            conn.send(batch)


def _noted(progress: Any, buffer: Any, index: int) -> bytes:
    return bytes(buffer[:int(progress[3])]) if int(progress[2]) == index else b""


# ---------------------------------------------------------------- Windows: a Job Object for the workers

class _WindowsJob:
    """A Job Object every worker is put in: each may commit at most its limit (an allocation beyond it
    fails, and Python raises MemoryError), and all are killed when the job's last handle closes, which
    happens when this process ends however it ends. Windows only; `create` returns None elsewhere or
    when the system refuses."""

    KILL_ON_JOB_CLOSE = 0x2000
    PROCESS_MEMORY = 0x100
    EXTENDED_LIMIT_INFORMATION = 9  # JOBOBJECTINFOCLASS JobObjectExtendedLimitInformation

    def __init__(self, kernel32: Any, handle: int) -> None:
        self._kernel32, self._handle = kernel32, handle

    @staticmethod
    def limits(memory_bytes: int) -> Any:
        """JOBOBJECT_EXTENDED_LIMIT_INFORMATION with the kill-on-close flag and the per-process memory limit,
        laid out as in winnt.h (fixed-width fields: the same layout whatever `long` is)."""
        import ctypes

        class BasicLimits(ctypes.Structure):
            _fields_ = [("PerProcessUserTimeLimit", ctypes.c_int64), ("PerJobUserTimeLimit", ctypes.c_int64),
                        ("LimitFlags", ctypes.c_uint32), ("MinimumWorkingSetSize", ctypes.c_size_t),
                        ("MaximumWorkingSetSize", ctypes.c_size_t), ("ActiveProcessLimit", ctypes.c_uint32),
                        ("Affinity", ctypes.c_size_t), ("PriorityClass", ctypes.c_uint32),
                        ("SchedulingClass", ctypes.c_uint32)]

        class IoCounters(ctypes.Structure):
            _fields_ = [(name, ctypes.c_uint64) for name in (
                "ReadOperationCount", "WriteOperationCount", "OtherOperationCount",
                "ReadTransferCount", "WriteTransferCount", "OtherTransferCount")]

        class ExtendedLimits(ctypes.Structure):
            _fields_ = [("BasicLimitInformation", BasicLimits), ("IoInfo", IoCounters),
                        ("ProcessMemoryLimit", ctypes.c_size_t), ("JobMemoryLimit", ctypes.c_size_t),
                        ("PeakProcessMemoryUsed", ctypes.c_size_t), ("PeakJobMemoryUsed", ctypes.c_size_t)]

        info = ExtendedLimits()
        info.BasicLimitInformation.LimitFlags = _WindowsJob.KILL_ON_JOB_CLOSE | _WindowsJob.PROCESS_MEMORY
        info.ProcessMemoryLimit = memory_bytes
        return info

    @classmethod
    def create(cls, memory_mb: int) -> _WindowsJob | None:
        if sys.platform != "win32":
            return None
        try:
            import ctypes

            kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
            kernel32.CreateJobObjectW.restype = ctypes.c_void_p
            kernel32.CreateJobObjectW.argtypes = [ctypes.c_void_p, ctypes.c_wchar_p]
            kernel32.SetInformationJobObject.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                                         ctypes.c_uint32]
            kernel32.AssignProcessToJobObject.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            handle = kernel32.CreateJobObjectW(None, None)
            if not handle:
                return None
            info = cls.limits((memory_mb + WINDOWS_BASELINE_MB) * 1024 * 1024)
            if not kernel32.SetInformationJobObject(handle, cls.EXTENDED_LIMIT_INFORMATION, ctypes.byref(info),
                                                    ctypes.sizeof(info)):
                return None
            return cls(kernel32, handle)
        except Exception:  # no job here: the deadline still applies, and workers notice their parent is gone
            return None

    def add(self, process_handle: int) -> None:
        try:
            self._kernel32.AssignProcessToJobObject(self._handle, process_handle)
        except Exception:
            pass


# ---------------------------------------------------------------- the parent's side

class _Worker:
    def __init__(self, context: Any, function: Callable, args: tuple, memory_mb: int,
                 preload: tuple[str, ...], job: _WindowsJob | None) -> None:
        self.conn, child = context.Pipe(duplex=True)
        # Item being worked on (or _STARTING / _IDLE), its start time, item whose note is in self.buffer
        # (-1: none), note length.
        self.progress = context.RawArray("d", [float(_STARTING), 0.0, -1.0, 0.0])
        self.buffer = context.RawArray("c", NOTE_BYTES)
        self.process = context.Process(target=_worker, daemon=True, name="tonghop-worker",
                                       args=(child, function, args, memory_mb, os.getpid(), self.progress,
                                             self.buffer, preload))
        self.started = time.monotonic()
        self.process.start()
        if job is not None:
            job.add(self.process.sentinel)  # on Windows the sentinel is the process handle
        child.close()
        self.pending: deque[tuple[int, Any]] = deque()

    def give(self, chunk: list[tuple[int, Any]]) -> None:
        self.pending.extend(chunk)
        try:
            self.conn.send(chunk)
        except OSError:  # it died since its last message: its sentinel says so, and its items are requeued
            pass

    def starting(self) -> bool:
        return int(self.progress[0]) == _STARTING

    def culprit(self) -> int:
        """The item a failed worker was on; the first one it was given when it says none."""
        index = int(self.progress[0])
        return index if index >= 0 and any(i == index for i, _ in self.pending) else self.pending[0][0]

    def overdue(self, now: float, limit: float) -> bool:
        if self.starting():
            return now - self.started > max(START_SECONDS, limit)
        return self.progress[0] >= 0 and now - self.progress[1] > limit

    def stop(self, kill: bool = False) -> None:
        if kill and self.process.is_alive():
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except (OSError, ValueError):
                pass
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=2)
        self.conn.close()


def _exit_detail(exitcode: int | None) -> str:
    """How a worker ended, in Vietnamese: the POSIX signal that killed it, or its exit code (hexadecimal
    for Windows status codes such as 0xC0000005)."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"tín hiệu {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"tín hiệu {-exitcode}"
    if exitcode is not None and exitcode >= 0x80000000:
        return f"mã thoát 0x{exitcode:08X}"
    return f"mã thoát {exitcode}"


class Pool(Generic[R]):
    """Persistent workers running `function(item, *args)`; `map(items)` as often as wanted.

    Workers start on `start()` (or entering the `with` block), forked where the platform can fork:
    threads of this process should be started after that, never before (a fork while a thread holds a
    lock hands the lock to the worker). `preload` names modules imported once before forking, so no
    worker pays for them (a spawned worker imports them while it starts). With `isolated=False` the
    function runs in this process, for trusted items and debugging.
    """

    def __init__(self, function: Callable[..., R], settings: IsolationSettings = DEFAULT_SETTINGS,
                 args: tuple = (), preload: Sequence[str] = (), isolated: bool = True) -> None:
        _check_named(function)
        self.function, self.settings, self.args, self.preload = function, settings, args, tuple(preload)
        self.isolated = isolated
        self._context = multiprocessing.get_context("fork" if can_fork() else "spawn")
        self._job: _WindowsJob | None = None
        self._workers: list[_Worker] = []
        self._start_deaths = 0  # workers that died while starting since one last started
        self._successes = 0
        self._errors: dict[tuple[str, str], int] = {}

    def __enter__(self) -> Pool[R]:
        self.start()
        return self

    def __exit__(self, exc_type: type | None, *exc_info: object) -> None:
        # Leaving on an error (the registry turned out malformed, Ctrl-C): the items still queued are moot.
        self.close(kill=exc_type is not None)

    def start(self) -> None:
        if not self.isolated:
            return
        if self._context.get_start_method() == "fork":
            for module in self.preload:
                importlib.import_module(module)
        if self._job is None:
            self._job = _WindowsJob.create(self.settings.memory_mb)
        while len(self._workers) < max(1, self.settings.workers):
            self._workers.append(self._spawn())

    def close(self, kill: bool = False) -> None:
        for worker in self._workers:
            worker.stop(kill=kill)
        self._workers.clear()

    def _spawn(self) -> _Worker:
        return _Worker(self._context, self.function, self.args, self.settings.memory_mb, self.preload, self._job)

    def map(self, items: Sequence[T], progress: Callable[[int, int], None] | None = None) -> list[R | Failed]:
        """One result per item, in order: `function(item, *args)`, or `Failed` where its worker died."""
        results: list[Any] = [None] * len(items)
        for index, result in self.completed(items, progress):
            results[index] = result
        return results

    def completed(self, items: Sequence[T], progress: Callable[[int, int], None] | None = None
                  ) -> Iterator[tuple[int, R | Failed]]:
        """(index, result) for every item, in the order they are done; `progress(done, total)` after each wake-up.
        Raises WorkersBroken when no worker can work here."""
        if not self.isolated:
            for index, item in enumerate(items):
                yield index, self.function(item, *self.args)
                if progress is not None:
                    progress(index + 1, len(items))
            return
        if not items:
            return
        self.start()
        queue: deque[tuple[int, Any]] = deque(enumerate(items))
        chunk = max(1, min(CHUNK, len(items) // (4 * len(self._workers)) or 1))
        for worker in self._workers:
            _feed(worker, queue, chunk)
        done = 0
        while any(worker.pending for worker in self._workers):
            busy = [w for w in self._workers if w.pending]
            # Pipes and process sentinels: connection.wait takes both on every platform.
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=0.5))
            now = time.monotonic()
            for worker in busy:
                failure = ""
                if worker.conn in ready:
                    # One message (a few results) per wake-up: the pipe is reported again while more wait.
                    try:
                        batch = worker.conn.recv()
                    except (EOFError, OSError):
                        failure = "crashed"
                    else:
                        self._start_deaths = 0
                        for index, result in batch:
                            worker.pending.popleft()
                            done += 1
                            yield index, self._result(result, len(items))
                        if len(worker.pending) <= chunk // 2:
                            _feed(worker, queue, chunk)  # topped up before it runs dry
                if not failure and worker.pending and worker.process.sentinel in ready and not worker.conn.poll():
                    failure = "crashed"
                if not failure and worker.pending and worker.overdue(now, self.settings.timeout_seconds):
                    failure = "timeout"
                if failure and worker.starting():
                    self._restart(worker, failure, queue, chunk)
                elif failure:
                    done += 1
                    yield self._replace(worker, failure, queue, chunk)
            for worker in self._workers:
                if not worker.pending:
                    _feed(worker, queue, chunk)
            if progress is not None:
                progress(done, len(items))

    def _result(self, result: Any, total: int) -> Any:
        """A worker's result as the caller sees it: an error `function` raised becomes the item's Failed,
        unless it is the same error for every item so far (the installation's, not the items')."""
        if not isinstance(result, _Raised):
            self._successes += 1
            return result
        key = (result.kind, result.message)
        self._errors[key] = self._errors.get(key, 0) + 1
        if self._successes == 0 and len(self._errors) == 1 and self._errors[key] >= min(SAME_ERRORS, max(total, 2)):
            raise WorkersBroken(
                f"{self.function.__qualname__} raised {result.kind}: {result.message} for every item:\n{result.trace}",
                f"Trình đọc tệp gặp cùng một lỗi với mọi tệp ({result.kind}: {result.message}) — lỗi của bản cài "
                f"đặt chứ không phải của các tệp; hãy cài đặt lại chương trình hoặc gửi tệp nhật ký cho người "
                f"quản trị.")
        return Failed(make_issue("reader_crashed", detail=f"lỗi chương trình {result.kind}"), result.note)

    def _restart(self, worker: _Worker, failure: str, queue: deque, chunk: int) -> None:
        """A worker died (or hung) before it was ready: no item is to blame. Requeue its items and start
        another; several in a row mean no worker can start here."""
        _end(worker, failure)
        self._start_deaths += 1
        detail = "quá thời gian khởi động" if failure == "timeout" else _exit_detail(worker.process.exitcode)
        if self._start_deaths >= START_DEATHS:
            raise WorkersBroken(
                f"{self._start_deaths} workers in a row died while starting ({worker.process.exitcode})",
                f"Không khởi động được trình đọc tệp ({detail}, {self._start_deaths} lần liên tiếp) — lỗi của bản "
                f"cài đặt chứ không phải của các tệp; chưa tệp nào được đánh giá. Hãy cài đặt lại chương trình "
                f"hoặc gửi tệp nhật ký cho người quản trị.")
        queue.extendleft(reversed(worker.pending))
        worker.pending.clear()
        replacement = self._spawn()
        self._workers[self._workers.index(worker)] = replacement
        _feed(replacement, queue, chunk)

    def _replace(self, worker: _Worker, failure: str, queue: deque, chunk: int) -> tuple[int, Failed]:
        """Stop a failed worker, requeue its other items for a successor; its item's index and `Failed`."""
        _end(worker, failure)
        index = worker.culprit()
        # Items done before the culprit whose results were not sent yet are done again by the successor.
        worker.pending = deque(entry for entry in worker.pending if entry[0] != index)
        if failure == "timeout":
            issue = make_issue("reader_timeout", seconds=f"{self.settings.timeout_seconds:g}")
        else:
            issue = make_issue("reader_crashed", detail=_exit_detail(worker.process.exitcode))
        failed = Failed(issue, _noted(worker.progress, worker.buffer, index))
        queue.extendleft(reversed(worker.pending))
        worker.pending.clear()
        replacement = self._spawn()
        self._workers[self._workers.index(worker)] = replacement
        _feed(replacement, queue, chunk)
        return index, failed


def _end(worker: _Worker, failure: str) -> None:
    """Stop a failed worker. One that crashed is given a moment to finish dying first, so its exit code
    says how it ended rather than that it was killed."""
    if failure == "crashed":
        worker.process.join(timeout=1)
    worker.stop(kill=True)


def _feed(worker: _Worker, queue: deque, chunk: int) -> None:
    batch = [queue.popleft() for _ in range(min(chunk, len(queue)))]
    if batch:
        worker.give(batch)


def map(function: Callable[..., R], items: Sequence[T], settings: IsolationSettings = DEFAULT_SETTINGS,
        *, args: tuple = (), preload: Sequence[str] = (), isolated: bool = True,
        progress: Callable[[int, int], None] | None = None) -> list[R | Failed]:
    """`function(item, *args)` for every item in isolated workers started for this call: results in order,
    `Failed` for each item whose worker crashed, overran `settings.timeout_seconds` or ran out of memory."""
    with Pool(function, settings, args, preload, isolated) as pool:
        return pool.map(items, progress)


# ---------------------------------------------------------------- other processes

def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (another run's, say). POSIX: signal 0. Windows: OpenProcess
    and its exit code, because there os.kill(pid, 0) sends Ctrl-C to that process group."""
    if pid == os.getpid():
        return True
    if sys.platform == "win32":
        return _windows_process_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _windows_process_alive(pid: int) -> bool:
    if sys.platform != "win32":  # (and the type checker, on other platforms, skips what follows)
        return False
    import ctypes

    still_active, query_limited, access_denied = 259, 0x1000, 5
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.OpenProcess.restype = ctypes.c_void_p
    kernel32.OpenProcess.argtypes = [ctypes.c_uint32, ctypes.c_int, ctypes.c_uint32]
    kernel32.GetExitCodeProcess.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32)]
    kernel32.CloseHandle.argtypes = [ctypes.c_void_p]
    handle = kernel32.OpenProcess(query_limited, 0, pid)
    if not handle:
        return ctypes.get_last_error() == access_denied  # exists, but not ours to look at
    try:
        code = ctypes.c_uint32()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == still_active
    finally:
        kernel32.CloseHandle(handle)


def run_program(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> int | None:
    """Run a program to completion and return its exit status, or None when `timeout` seconds passed
    first (the readers convert legacy documents with LibreOffice through it). It runs in a process group of its own
    (POSIX: a new session; Windows: a new process group), with no console input or output, and its
    whole tree is killed on the way out, whether it finished, timed out or this thread was interrupted,
    so no LibreOffice outlives the call (nor a helper it left behind)."""
    # Its own process group, so that its whole tree can be stopped (soffice.exe starts soffice.bin).
    group: dict[str, Any]
    if sys.platform == "win32":
        group = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW}
    else:
        group = {"start_new_session": True}
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, **group)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        return None
    finally:
        _kill_tree(process)


def _kill_tree(process: Any) -> None:
    if sys.platform == "win32":
        if process.poll() is None:
            try:  # the tree first, then the program itself
                subprocess.run(["taskkill", "/PID", str(process.pid), "/T", "/F"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30, check=False,
                               creationflags=subprocess.CREATE_NO_WINDOW)
            except (OSError, subprocess.SubprocessError):
                pass
            process.kill()
    else:
        try:
            # The session leader's pid is the group's id, even once it has exited: helpers it left behind
            # go too. SIGKILL leaves no code of theirs to run.
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    process.wait()


# ---------------------------------------------------------------- one call in a forked child

class Child:
    """A forked process running one function; `wait()` raises in this process what it raised there,
    `stop()` abandons it."""

    def __init__(self, process: Any, results: Any, paused: ExitStack) -> None:
        self._process, self._results, self._paused = process, results, paused

    def wait(self) -> None:
        try:
            report = self._results.recv()  # before join: a long report must not wait on a full pipe
        except EOFError:
            report = _NO_REPORT  # killed (out of memory, a signal) before it could say anything
        finally:
            self._finish()
        if report is None and self._process.exitcode == 0:
            return
        if isinstance(report, _Failure):
            raise report.exception()
        raise RuntimeError(f"the child process failed (exit code {self._process.exitcode})")

    def stop(self) -> None:
        self._process.terminate()
        self._finish()

    def _finish(self) -> None:
        self._results.close()
        self._process.join()
        self._paused.close()


_NO_REPORT = object()


def in_child(function: Callable[..., Any], *args: Any) -> Child:
    """Run `function(*args)` in a forked copy of this process (where `can_fork()`): the child starts
    with this process's data as it is, nothing pickled.

    While both processes share the heap, neither collects garbage among the objects that existed at
    the fork (gc_paused until the child is joined): a collection writes to every object it visits,
    which would copy each shared page."""
    context = multiprocessing.get_context("fork")
    results, report = context.Pipe(duplex=False)
    process = context.Process(target=_report_to, args=(report, function, args),
                              name=f"tonghop-{getattr(function, '__name__', 'child')}")
    paused = ExitStack()
    paused.enter_context(gc_paused())
    try:
        process.start()
    except BaseException:
        paused.close()
        results.close()
        raise
    finally:
        report.close()  # the child's end: once the child is gone, recv() ends instead of waiting
    return Child(process, results, paused)


def _report_to(report: Any, function: Callable[..., Any], args: tuple) -> None:
    """The forked child: run, then report None or the failure through the pipe."""
    try:
        function(*args)
    except BaseException as exc:
        report.send(_Failure.of(exc))
        report.close()
        raise SystemExit(1) from None
    report.send(None)
    report.close()


@dataclass(frozen=True)
class _Failure:
    """An exception of the child, carried to the parent: itself when it pickles, else its type and
    message (an exception whose constructor takes other arguments than its message does not)."""

    pickled: bytes | None
    kind: bytes | None
    message: str
    trace: str

    @classmethod
    def of(cls, exc: BaseException) -> _Failure:
        trace = "".join(traceback.format_exception(exc))
        try:
            dumped = pickle.dumps(exc)
            pickle.loads(dumped)
            pickled: bytes | None = dumped
        except Exception:
            pickled = None
        try:
            kind: bytes | None = pickle.dumps(type(exc))
        except Exception:
            kind = None
        return cls(pickled, kind, str(exc), trace)

    def exception(self) -> BaseException:
        exc: BaseException | None = None
        if self.pickled is not None:
            try:
                exc = pickle.loads(self.pickled)
            except Exception:
                exc = None
        if exc is None and self.kind is not None:
            try:
                kind = pickle.loads(self.kind)
                exc = kind.__new__(kind, self.message)
                exc.args = (self.message,)
            except Exception:
                exc = None
        if not isinstance(exc, BaseException):
            exc = RuntimeError(f"the child process failed: {self.message}")
        exc.add_note(f"raised in the child process:\n{self.trace}")
        return exc


# ---------------------------------------------------------------- threads of this process

class Background(Generic[R]):
    """A call running in a thread of this process; `result()` waits for it, returns its value or raises."""

    def __init__(self, function: Callable[..., R], args: tuple) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(function, args), daemon=True,
                                        name=f"background-{getattr(function, '__name__', 'call')}")
        self._thread.start()

    def _run(self, function: Callable[..., R], args: tuple) -> None:
        try:
            self._value = function(*args)
        except BaseException as exc:  # raised again in the caller's thread by result()
            self._error = exc

    def result(self) -> R:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def in_background(function: Callable[..., R], *args: Any) -> Background[R]:
    """Start `function(*args)` in a thread of this process. Start it after forking any worker pool: a fork
    while a thread holds a lock (an import's, say) hands the lock, held forever, to the child."""
    return Background(function, args)


# ---------------------------------------------------------------- garbage collection

_paused = 0
_was_enabled = True


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block, and every object that exists on entering it frozen
    (left out of collections; a process forked inside the block shares their pages instead of copying
    each one a collection would write to). Nestable: an inner block freezes what was made since; only
    the outermost one unfreezes and restores collection.

    Measured: a run builds hundreds of thousands of small acyclic objects the collector only rescans
    (15–23 % of a 10,000-file run).
    """
    global _paused, _was_enabled
    if _paused == 0:
        _was_enabled = gc.isenabled()
        gc.disable()
    gc.freeze()
    _paused += 1
    try:
        yield
    finally:
        _paused -= 1
        if _paused == 0:
            gc.unfreeze()
            if _was_enabled:
                gc.enable()


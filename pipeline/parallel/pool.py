"""Every process, thread and garbage-collector device of the pipeline, behind four small interfaces.

- `map(function, items, settings)` / `Pool`: run a named top-level function over items in persistent,
  forked, isolated worker processes (fed in chunks, an address-space cap, a per-item deadline, killed
  with their parent); the results in order, or for each item whose worker crashed, overran its
  deadline or ran out of memory, the `Failed` record holding the Issue that replaced it.
- `note(data)`: from inside `function`, a few bytes the parent keeps for the current item should
  its worker die on it (the reader notes the sha256 of the bytes it read).
- `in_background(function, *args)`: a thread of this process; `.result()` returns its value or raises.
- `gc_paused()`: no cyclic garbage collection inside the block (and the heap frozen, so a fork made
  inside it shares its pages).

Nothing else in the package starts a process or a thread, or touches `gc`.
"""

from __future__ import annotations

import gc
import importlib
import inspect
import multiprocessing
import os
import selectors
import signal
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from pipeline.core.issues import Issue, make_issue

T = TypeVar("T")
R = TypeVar("R")

# Measured: feeding workers in chunks instead of one item per message saves ~2.5 s at 10,000 files.
CHUNK = 16  # items handed to a worker at once; small enough to rebalance, large enough to batch IPC
RESULT_BATCH = 4  # results a worker sends back in one message
NOTE_BYTES = 64  # the most a worker may `note` per item


@dataclass(frozen=True)
class IsolationSettings:
    workers: int = 2
    timeout_seconds: float = 30.0
    memory_mb: int = 768  # address space a worker may add on top of what it starts with


DEFAULT_SETTINGS = IsolationSettings()


@dataclass(frozen=True, slots=True)
class Failed:
    """What replaced the result of an item whose worker died on it: the Issue saying why
    (reader_crashed, reader_timeout, reader_out_of_memory), and what the worker `note`d for it."""

    issue: Issue
    note: bytes = b""


def _check_named(function: Callable) -> None:
    """Workers find `function` by its module and name (pickled by reference under spawn; and a lambda or a
    bound method would drag its closure or instance along): a named top-level function only."""
    assert inspect.isfunction(function), f"{function!r} is not a plain function (bound method, partial, class?)"
    assert function.__name__ != "<lambda>" and "<locals>" not in function.__qualname__, \
        f"{function.__qualname__} is not a named top-level function"
    module = sys.modules.get(function.__module__)
    assert module is not None and getattr(module, function.__qualname__, None) is function, \
        f"{function.__module__}.{function.__qualname__} is not reachable by its name"


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
    """Ask Linux to kill this worker when the parent dies, even by SIGKILL."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _virtual_size() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _worker(conn: Connection, function: Callable, args: tuple, memory_mb: int, parent: int,
            progress: Any, buffer: Any) -> None:
    """Call `function(item, *args)` for the items of each task; send the results back a few at a time.
    `progress` (shared memory: the index of the item being worked on, -1 between items; when it was
    started; the item whose note is in `buffer`; the note's length) is what the parent reads to time an
    item out and to know which item a crash came from."""
    global _slots, _current
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent()
    try:
        # A parser that aborts prints a Rust backtrace; the item's issue says all the user needs.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        pass
    try:
        import resource

        cap = _virtual_size() + memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ImportError, ValueError, OSError):
        pass  # no RLIMIT_AS on this platform: the deadline still applies
    _slots = (progress, buffer)
    while True:
        try:
            # Other workers forked later hold copies of this pipe's parent end, so EOF alone cannot tell
            # us the parent is gone: poll, and check who our parent is.
            if not conn.poll(1.0):
                if os.getppid() != parent:
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
            try:
                result = function(item, *args)
            except MemoryError:
                result = Failed(make_issue("reader_out_of_memory"), _noted(progress, buffer, index))
            batch.append((index, result))
            if len(batch) >= RESULT_BATCH:
                conn.send(batch)
                batch = []
        progress[0] = _current = -1
        if batch:
            conn.send(batch)


def _noted(progress: Any, buffer: Any, index: int) -> bytes:
    return bytes(buffer[:int(progress[3])]) if int(progress[2]) == index else b""


# ---------------------------------------------------------------- the parent's side

class _Worker:
    def __init__(self, context, function: Callable, args: tuple, memory_mb: int) -> None:
        self.conn, child = context.Pipe(duplex=True)
        # Item being worked on (-1: none), its start time, item whose note is in self.buffer (-1: none), note length.
        self.progress = context.RawArray("d", [-1.0, 0.0, -1.0, 0.0])
        self.buffer = context.RawArray("c", NOTE_BYTES)
        self.process = context.Process(target=_worker, daemon=True, name="tonghop-worker",
                                       args=(child, function, args, memory_mb, os.getpid(), self.progress,
                                             self.buffer))
        self.process.start()
        child.close()
        self.pending: deque[tuple[int, Any]] = deque()

    def give(self, chunk: list[tuple[int, Any]]) -> None:
        self.pending.extend(chunk)
        try:
            self.conn.send(chunk)
        except OSError:  # it died since its last message: its sentinel says so, and its items are requeued
            pass

    def culprit(self) -> int:
        """The item a failed worker was on; the first one it was given when it says none."""
        index = int(self.progress[0])
        return index if index >= 0 and any(i == index for i, _ in self.pending) else self.pending[0][0]

    def overdue(self, now: float, limit: float) -> bool:
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


class Pool(Generic[R]):
    """Persistent workers running `function(item, *args)`; `map(items)` as often as wanted.

    Workers are forked on `start()` (or entering the `with` block): threads of this process should be
    started after that, never before (a fork while a thread holds a lock hands the lock to the worker).
    `preload` names modules imported here once before forking, so no worker pays for them. With
    `isolated=False` the function runs in this process, for trusted items and debugging.
    """

    def __init__(self, function: Callable[..., R], settings: IsolationSettings = DEFAULT_SETTINGS,
                 args: tuple = (), preload: Sequence[str] = (), isolated: bool = True) -> None:
        _check_named(function)
        self.function, self.settings, self.args, self.preload = function, settings, args, tuple(preload)
        self.isolated = isolated
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        self._context = multiprocessing.get_context(method)
        self._workers: list[_Worker] = []

    def __enter__(self) -> Pool[R]:
        self.start()
        return self

    def __exit__(self, exc_type: type | None, *exc_info: object) -> None:
        # Leaving on an error (the registry turned out malformed, Ctrl-C): the items still queued are moot.
        self.close(kill=exc_type is not None)

    def start(self) -> None:
        if not self.isolated:
            return
        for module in self.preload:
            importlib.import_module(module)
        while len(self._workers) < max(1, self.settings.workers):
            self._workers.append(self._spawn())

    def close(self, kill: bool = False) -> None:
        for worker in self._workers:
            worker.stop(kill=kill)
        self._workers.clear()

    def _spawn(self) -> _Worker:
        return _Worker(self._context, self.function, self.args, self.settings.memory_mb)

    def map(self, items: Sequence[T], progress: Callable[[int, int], None] | None = None) -> list[R | Failed]:
        """One result per item, in order: `function(item, *args)`, or `Failed` where its worker died."""
        results: list[Any] = [None] * len(items)
        for index, result in self.completed(items, progress):
            results[index] = result
        return results

    def completed(self, items: Sequence[T], progress: Callable[[int, int], None] | None = None
                  ) -> Iterator[tuple[int, R | Failed]]:
        """(index, result) for every item, in the order they are done; `progress(done, total)` after each wake-up."""
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
        # One selector for the whole map: building one per wait costs more than the wait itself.
        with selectors.DefaultSelector() as selector:
            watched: set[_Worker] = set()
            while any(worker.pending for worker in self._workers):
                for worker in self._workers:
                    if worker.pending and worker not in watched:
                        selector.register(worker.conn, selectors.EVENT_READ)
                        selector.register(worker.process.sentinel, selectors.EVENT_READ)
                        watched.add(worker)
                for worker in [w for w in watched if not w.pending or w not in self._workers]:
                    selector.unregister(worker.conn)
                    selector.unregister(worker.process.sentinel)
                    watched.discard(worker)
                ready = {key.fileobj for key, _ in selector.select(timeout=0.5)}
                now = time.monotonic()
                for worker in [w for w in self._workers if w.pending]:
                    failure = ""
                    if worker.conn in ready:
                        # One message (a few results) per wake-up: the selector reports the pipe again while
                        # more wait, and Connection.poll() would build a selector of its own each time.
                        try:
                            batch = worker.conn.recv()
                        except (EOFError, OSError):
                            failure = "crashed"
                        else:
                            for index, result in batch:
                                worker.pending.popleft()
                                done += 1
                                yield index, result
                            if len(worker.pending) <= chunk // 2:
                                _feed(worker, queue, chunk)  # topped up before it runs dry
                    if not failure and worker.pending and worker.process.sentinel in ready and not worker.conn.poll():
                        failure = "crashed"
                    if not failure and worker.pending and worker.overdue(now, self.settings.timeout_seconds):
                        failure = "timeout"
                    if failure:
                        if worker in watched:
                            selector.unregister(worker.conn)
                            selector.unregister(worker.process.sentinel)
                            watched.discard(worker)
                        done += 1
                        yield self._replace(worker, failure, queue, chunk)
                for worker in self._workers:
                    if not worker.pending:
                        _feed(worker, queue, chunk)
                if progress is not None:
                    progress(done, len(items))

    def _replace(self, worker: _Worker, failure: str, queue: deque, chunk: int) -> tuple[int, Failed]:
        """Stop a failed worker, requeue its other items for a successor; its item's index and `Failed`."""
        worker.stop(kill=True)
        index = worker.culprit()
        # Items done before the culprit whose results were not sent yet are done again by the successor.
        worker.pending = deque(entry for entry in worker.pending if entry[0] != index)
        exitcode = worker.process.exitcode
        if failure == "timeout":
            issue = make_issue("reader_timeout", seconds=f"{self.settings.timeout_seconds:g}")
        elif exitcode is not None and exitcode < 0 and -exitcode in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT):
            issue = make_issue("reader_crashed", detail=f"tín hiệu {signal.Signals(-exitcode).name}")
        else:
            issue = make_issue("reader_crashed", detail=f"mã thoát {exitcode}")
        failed = Failed(issue, _noted(worker.progress, worker.buffer, index))
        queue.extendleft(reversed(worker.pending))
        worker.pending.clear()
        replacement = self._spawn()
        self._workers[self._workers.index(worker)] = replacement
        _feed(replacement, queue, chunk)
        return index, failed


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


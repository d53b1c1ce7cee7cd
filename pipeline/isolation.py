"""Parse untrusted files in persistent worker processes with a memory cap and a per-file deadline.

A parser that aborts the process (python-calamine does on some crafted files), loops, or eats all
memory takes down only its worker: that one file gets an error issue, the worker is replaced, and
the files queued behind it are read by the next one. Workers are forked once and fed in chunks, so
isolation costs a few microseconds per file, not a process start.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import selectors
import signal
import time
from collections import deque
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

from pipeline.form import FormDefinition
from pipeline.issues import make_issue
from pipeline.read import ReadResult, read_submission
from pipeline.screen import DEFAULT_LIMITS, FileTooLarge, Limits, read_failure, read_inbox_file

CHUNK = 16  # files handed to a worker at once; small enough to rebalance, large enough to batch IPC
RESULT_BATCH = 4  # outcomes a worker sends back in one message
_CONSUMED = object()  # marks a result handed to on_result and not kept
Finish = Callable[[Path, "ReadOutcome"], Any]


@dataclass(frozen=True)
class IsolationSettings:
    workers: int = 2
    timeout_seconds: float = 30.0
    memory_mb: int = 768  # address space a worker may add on top of what it starts with


@dataclass(slots=True)
class ReadOutcome:
    sha256: str
    result: ReadResult


def read_one(path: Path, form: FormDefinition, limits: Limits = DEFAULT_LIMITS,
             on_read: Callable[[bytes], None] | None = None) -> ReadOutcome:
    """Hash and read a file from one read of its bytes (screen.read_inbox_file: no link followed, no
    wait on a pipe, a regular file only). `on_read(digest)` hears the sha256 before any parser runs."""
    try:
        raw = read_inbox_file(path, limits)
    except OSError as exc:  # FileTooLarge (hashed on the same handle), NotRegularFile, gone, no access
        sha = exc.sha256 if isinstance(exc, FileTooLarge) else ""
        return ReadOutcome(sha, ReadResult("rejected", issues=[read_failure(exc, limits)]))
    digest = hashlib.sha256(raw)
    if on_read is not None:
        on_read(digest.digest())
    return ReadOutcome(digest.hexdigest(), read_submission(path, form, limits, raw))


def _virtual_size() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when the parent dies, even by SIGKILL."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker(conn: Connection, form: FormDefinition, limits: Limits, memory_mb: int, parent: int,
            finish: Finish | None = None, progress: Any = None, digest: Any = None) -> None:
    """Read the files of each task and send their outcomes back a few at a time. `progress` (shared
    memory: the index of the file being read, -1 between files, and when it was started) is what the
    parent reads to time a file out, and to know which file a crash came from; `digest` (shared memory)
    holds the sha256 of the bytes read of the file whose index is progress[2], so a file whose parser
    takes the worker down keeps the digest of what was read, and the parent never opens the file."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent()
    try:
        # A parser that aborts prints a Rust backtrace; the file's issue says all the user needs.
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
        for index, path in task:
            on_read = None
            if progress is not None:
                progress[2] = -1
                progress[1] = time.monotonic()
                progress[0] = index
                if digest is not None:
                    on_read = partial(_share_digest, progress, digest, index)
            try:
                outcome = read_one(Path(path), form, limits, on_read)
                if finish is not None:
                    outcome = finish(Path(path), outcome)
            except MemoryError:
                outcome = ReadOutcome("", ReadResult("rejected", issues=[make_issue("reader_out_of_memory")]))
            batch.append((index, outcome))
            if len(batch) >= RESULT_BATCH:
                conn.send(batch)
                batch = []
        if progress is not None:
            progress[0] = -1
        if batch:
            conn.send(batch)


def _share_digest(progress: Any, shared: Any, index: int, digest: bytes) -> None:
    shared.raw = digest
    progress[2] = index  # after the digest: the parent trusts it only for this file


class _Worker:
    def __init__(self, context, form: FormDefinition, limits: Limits, memory_mb: int,
                 finish: Finish | None) -> None:
        self.conn, child = context.Pipe(duplex=True)
        # File being read (-1: none), its start time, file whose bytes' digest is in self.digest (-1: none).
        self.progress = context.RawArray("d", [-1.0, 0.0, -1.0])
        self.digest = context.RawArray("c", 32)
        self.process = context.Process(target=_worker, daemon=True,
                                       args=(child, form, limits, memory_mb, os.getpid(), finish, self.progress,
                                             self.digest))
        self.process.start()
        child.close()
        self.pending: deque[tuple[int, str]] = deque()

    def give(self, chunk: list[tuple[int, str]]) -> None:
        self.pending.extend(chunk)
        self.conn.send(chunk)

    def current(self) -> int | None:
        """The index of the file this worker is reading, if it is reading one of its pending files."""
        index = int(self.progress[0])
        return index if index >= 0 and any(i == index for i, _ in self.pending) else None

    def digest_of(self, index: int) -> str:
        """The sha256 of the bytes the worker read of file `index`; "" if it did not get that far."""
        return self.digest.raw.hex() if int(self.progress[2]) == index else ""

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


class ReaderPool:
    """Reads many files in isolated workers; `read_all` returns one ReadOutcome per path, in order."""

    def __init__(self, form: FormDefinition, settings: IsolationSettings = IsolationSettings(),
                 limits: Limits = DEFAULT_LIMITS, finish: Finish | None = None) -> None:
        """`finish(path, outcome)` turns each ReadOutcome into what `read_all` returns; it runs in the
        workers when they are forked (so it may be any callable), else in this process."""
        self.form, self.settings, self.limits = form, settings, limits
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        self._context = multiprocessing.get_context(method)
        self.finish = finish
        self._finish_here = finish is not None and method != "fork"
        self._workers: list[_Worker] = []
        self._chunk = CHUNK

    def __enter__(self) -> "ReaderPool":
        self.start()
        return self

    def __exit__(self, exc_type: type | None, *exc_info: object) -> None:
        # Leaving on an error (the registry turned out malformed, Ctrl-C): the files still queued are moot.
        self.close(kill=exc_type is not None)

    def start(self) -> None:
        # Imported once here, before forking, so no worker pays for them.
        import defusedxml.ElementTree  # noqa: F401
        import olefile  # noqa: F401
        import python_calamine  # noqa: F401

        while len(self._workers) < max(1, self.settings.workers):
            self._workers.append(self._spawn())

    def _spawn(self) -> _Worker:
        return _Worker(self._context, self.form, self.limits, self.settings.memory_mb,
                       None if self._finish_here else self.finish)

    def close(self, kill: bool = False) -> None:
        for worker in self._workers:
            worker.stop(kill=kill)
        self._workers.clear()

    def read_all(self, paths: list[Path], progress: Callable[[int, int], None] | None = None,
                 on_result: Callable[[int, ReadOutcome], None] | None = None) -> list[ReadOutcome]:
        """One outcome per path, in order; or, with `on_result(index, outcome)` called as each one arrives,
        nothing kept and an empty list returned."""
        self.start()
        done = 0
        results: list[ReadOutcome | None] = [None] * len(paths)
        queue: deque[tuple[int, str]] = deque((i, str(p)) for i, p in enumerate(paths))
        chunk = self._chunk = max(1, min(CHUNK, len(paths) // (4 * len(self._workers)) or 1))
        for worker in self._workers:
            self._feed(worker, queue, chunk)
        # One selector for the whole read: building one per wait costs more than the wait itself.
        with selectors.DefaultSelector() as selector:
            watched: set[_Worker] = set()

            def unwatch(worker: _Worker) -> None:
                selector.unregister(worker.conn)
                selector.unregister(worker.process.sentinel)
                watched.discard(worker)

            while any(worker.pending for worker in self._workers):
                for worker in self._workers:
                    if worker.pending and worker not in watched:
                        selector.register(worker.conn, selectors.EVENT_READ)
                        selector.register(worker.process.sentinel, selectors.EVENT_READ)
                        watched.add(worker)
                for worker in [w for w in watched if not w.pending or w not in self._workers]:
                    unwatch(worker)
                ready = {key.fileobj for key, _ in selector.select(timeout=0.5)}
                now = time.monotonic()
                for worker in [w for w in self._workers if w.pending]:
                    failed = ""
                    if worker.conn in ready:
                        # One message (a few outcomes) per wake-up: the selector reports the pipe again
                        # while more wait, and Connection.poll() would build a selector of its own each time.
                        try:
                            batch = worker.conn.recv()
                        except (EOFError, OSError):
                            failed = "crashed"
                        else:
                            for index, outcome in batch:
                                if self._finish_here:
                                    outcome = self.finish(Path(paths[index]), outcome)
                                # A consumer that takes each result as it comes does not need them kept.
                                results[index] = outcome if on_result is None else _CONSUMED
                                worker.pending.popleft()
                                done += 1
                                if on_result is not None:
                                    on_result(index, outcome)
                            if len(worker.pending) <= chunk // 2:
                                # Top up before it runs dry, so it never waits for this process.
                                self._feed(worker, queue, chunk)
                    if not failed and worker.pending and worker.process.sentinel in ready and not worker.conn.poll():
                        failed = "crashed"
                    if not failed and worker.pending and worker.overdue(now, self.settings.timeout_seconds):
                        failed = "timeout"
                    if failed:
                        if worker in watched:
                            unwatch(worker)
                        failed_index = self._replace(worker, failed, results, queue)
                        done += 1
                        if on_result is not None:
                            on_result(failed_index, results[failed_index])
                            results[failed_index] = _CONSUMED
                for worker in self._workers:
                    if not worker.pending:
                        self._feed(worker, queue, chunk)
                if progress is not None:
                    progress(done, len(paths))
        if on_result is not None:
            return []
        return [r if r is not None else ReadOutcome("", ReadResult("rejected")) for r in results]

    def _feed(self, worker: _Worker, queue: deque, chunk: int) -> None:
        batch = [queue.popleft() for _ in range(min(chunk, len(queue)))]
        if batch:
            worker.give(batch)

    @staticmethod
    def _culprit(worker: _Worker) -> int:
        """The file a failed worker was reading; the first one it was given when it says none."""
        current = worker.current()
        return current if current is not None else worker.pending[0][0]

    def _replace(self, worker: _Worker, failure: str, results: list, queue: deque) -> int:
        """Stop a failed worker, give its file the failure's issue, requeue the rest; the file's index."""
        worker.stop(kill=True)
        # Files read before the culprit whose outcomes were not sent yet are read again by the successor.
        culprit = self._culprit(worker)
        index, path = next(item for item in worker.pending if item[0] == culprit)
        worker.pending.remove((index, path))
        exitcode = worker.process.exitcode
        if failure == "timeout":
            issue = make_issue("reader_timeout", seconds=f"{self.settings.timeout_seconds:g}")
        elif exitcode is not None and exitcode < 0 and -exitcode in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT):
            name = signal.Signals(-exitcode).name
            issue = make_issue("reader_crashed", detail=f"tín hiệu {name}")
        else:
            issue = make_issue("reader_crashed", detail=f"mã thoát {exitcode}")
        # The digest the worker took of the bytes it read: opening the file here could block this process
        # (a FIFO swapped in) or hash other bytes than the ones that took the worker down.
        outcome = ReadOutcome(worker.digest_of(index), ReadResult("rejected", issues=[issue]))
        results[index] = self.finish(Path(path), outcome) if self.finish is not None else outcome
        queue.extendleft(reversed(worker.pending))
        worker.pending.clear()
        replacement = self._spawn()
        self._workers[self._workers.index(worker)] = replacement
        self._feed(replacement, queue, self._chunk)
        return index


def read_in_process(paths: list[Path], form: FormDefinition, limits: Limits = DEFAULT_LIMITS,
                    finish: Finish | None = None) -> list:
    """The same reading without isolation, for trusted files and debugging."""
    outcomes = [read_one(p, form, limits) for p in paths]
    return [finish(p, o) for p, o in zip(paths, outcomes)] if finish is not None else outcomes

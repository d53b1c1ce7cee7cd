"""pipeline.parallel.pool: the one pool contract (results in order, or the Issue that replaced each), the
background helper, and the garbage-collector pause."""

from __future__ import annotations

import ctypes
import functools
import gc
import importlib.util
import multiprocessing
import os
import selectors
import socket
import sys
import time

import pytest

from pipeline.parallel import pool as parallel
from pipeline.parallel.pool import Failed, IsolationSettings, WorkersBroken

CRASH, SLEEP, HOG = 17, 23, 31


def square(item: int, offset: int = 0) -> int:
    return item * item + offset


def square_or_crash(item: int) -> int:
    if item == CRASH:
        parallel.note(b"seen %d" % item)
        os._exit(3)
    return item * item


def square_or_sleep(item: int) -> int:
    if item == SLEEP:
        time.sleep(60)
    return item * item


def square_or_hog(item: int) -> int:
    if item == HOG:
        parallel.note(b"hog")
        hoard = bytearray(4 * 1024 ** 3)  # beyond the worker's address-space cap
        return len(hoard)
    return item * item


class Holder:
    def method(self, item: int) -> int:
        return item


def test_results_come_in_order_across_workers():
    items = list(range(50))
    results = parallel.map(square, items, IsolationSettings(workers=2), args=(1,))
    assert results == [i * i + 1 for i in items]
    assert multiprocessing.active_children() == []


def test_progress_reports_every_item_once_done():
    seen: list[tuple[int, int]] = []
    parallel.map(square, list(range(40)), IsolationSettings(workers=2), progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1] == (40, 40)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_a_crashing_item_is_replaced_by_its_issue_and_the_others_are_kept():
    items = list(range(50))
    results = parallel.map(square_or_crash, items, IsolationSettings(workers=2))
    failed = results[CRASH]
    assert isinstance(failed, Failed)
    assert failed.issue.code == "reader_crashed" and "3" in failed.issue.message
    assert failed.note == b"seen 17"
    assert [r for i, r in enumerate(results) if i != CRASH] == [i * i for i in items if i != CRASH]


def test_an_item_past_its_deadline_is_replaced_by_reader_timeout():
    items = list(range(30))
    started = time.monotonic()
    results = parallel.map(square_or_sleep, items, IsolationSettings(workers=2, timeout_seconds=0.5))
    assert time.monotonic() - started < 20
    assert isinstance(results[SLEEP], Failed) and results[SLEEP].issue.code == "reader_timeout"
    assert [r for i, r in enumerate(results) if i != SLEEP] == [i * i for i in items if i != SLEEP]
    assert multiprocessing.active_children() == []


@pytest.mark.skipif(importlib.util.find_spec("resource") is None and sys.platform != "win32",
                    reason="no memory cap on this platform (neither RLIMIT_AS nor a Job Object)")
def test_an_item_beyond_the_memory_cap_is_replaced_by_reader_out_of_memory():
    items = list(range(40))
    results = parallel.map(square_or_hog, items, IsolationSettings(workers=2, memory_mb=256))
    assert isinstance(results[HOG], Failed)
    assert results[HOG].issue.code == "reader_out_of_memory" and results[HOG].note == b"hog"
    assert [r for i, r in enumerate(results) if i != HOG] == [i * i for i in items if i != HOG]


def test_a_pool_keeps_its_workers_across_maps():
    with parallel.Pool(square, IsolationSettings(workers=2)) as pool:
        first = pool.map([1, 2, 3])
        pids = {w.process.pid for w in pool._workers}
        second = pool.map(list(range(20)))
        assert {w.process.pid for w in pool._workers} == pids
    assert first == [1, 4, 9] and second == [i * i for i in range(20)]
    assert multiprocessing.active_children() == []


def test_in_process_map_gives_the_same_results():
    assert parallel.map(square, [3, 4], isolated=False) == [9, 16]
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("function", [lambda item: item, Holder().method, functools.partial(square, offset=1)],
                         ids=["lambda", "bound method", "partial"])
def test_only_a_named_top_level_function_is_accepted(function):
    with pytest.raises(AssertionError):
        parallel.map(function, [1, 2])
    assert multiprocessing.active_children() == []


def fail(message: str) -> None:
    raise ValueError(message)


def test_in_background_returns_the_value_or_raises_in_the_caller():
    assert parallel.in_background(square, 5, 1).result() == 26
    with pytest.raises(ValueError, match="boom"):
        parallel.in_background(fail, "boom").result()


def test_gc_paused_nests_and_restores_collection():
    assert gc.isenabled()
    with parallel.gc_paused():
        assert not gc.isenabled() and gc.get_freeze_count() > 0
        with parallel.gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled() and gc.get_freeze_count() > 0
    assert gc.isenabled() and gc.get_freeze_count() == 0


def square_or_raise(item: int) -> int:
    if item % 2:
        raise KeyError(f"odd {item}")
    return item * item


def always_raise(item: int) -> int:
    raise ImportError("DLL load failed while importing _calamine")


def test_an_error_raised_for_some_items_replaces_only_those():
    results = parallel.map(square_or_raise, list(range(10)), IsolationSettings(workers=2))
    assert results[0::2] == [i * i for i in range(0, 10, 2)]
    for failed in results[1::2]:
        assert isinstance(failed, Failed) and failed.issue.code == "reader_crashed"
        assert "KeyError" in failed.issue.message
    assert multiprocessing.active_children() == []


def test_the_same_error_for_every_item_stops_the_map_instead_of_blaming_them():
    with pytest.raises(WorkersBroken) as caught:
        parallel.map(always_raise, list(range(10)), IsolationSettings(workers=2))
    assert "ImportError: DLL load failed" in caught.value.sentence
    assert "lỗi của bản cài đặt" in caught.value.sentence
    assert multiprocessing.active_children() == []


def test_workers_that_die_while_starting_stop_the_map_with_a_sentence(monkeypatch):
    monkeypatch.setenv("TONGHOP_TEST_START_DEATH", "always")
    with pytest.raises(WorkersBroken) as caught:
        parallel.map(square, list(range(10)), IsolationSettings(workers=2), preload=["startup_deaths"])
    assert caught.value.sentence.startswith("Không khởi động được trình đọc tệp (mã thoát 7, 3 lần liên tiếp)")
    assert multiprocessing.active_children() == []


def test_a_worker_that_dies_once_while_starting_blames_no_item(monkeypatch, tmp_path):
    monkeypatch.setenv("TONGHOP_TEST_START_DEATH", str(tmp_path / "died-once"))
    results = parallel.map(square, list(range(30)), IsolationSettings(workers=2), preload=["startup_deaths"])
    assert (tmp_path / "died-once").exists()  # one worker did die
    assert results == [i * i for i in range(30)]


class SocketsOnlySelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Windows' selectors: anything but a socket is refused (WinError 10038)."""

    def register(self, fileobj, events, data=None):
        if not isinstance(fileobj, socket.socket):
            raise OSError(10038, "An operation was attempted on something that is not a socket")
        return super().register(fileobj, events, data)


def test_the_pool_works_where_selectors_take_sockets_only_and_libc_cannot_be_named(monkeypatch):
    """Two of Windows' ways: the pool must not wait on its pipes with `selectors`, and a worker must start
    where ctypes.CDLL(None) raises TypeError (forked workers inherit both patches)."""
    original = ctypes.CDLL.__init__

    def no_null_name(self, name, *args, **kwargs):
        if name is None:
            raise TypeError("expected str, bytes or os.PathLike object, not NoneType")
        original(self, name, *args, **kwargs)

    monkeypatch.setattr(selectors, "DefaultSelector", SocketsOnlySelector)
    monkeypatch.setattr(ctypes.CDLL, "__init__", no_null_name)
    results = parallel.map(square_or_crash, list(range(40)), IsolationSettings(workers=2))
    assert isinstance(results[CRASH], Failed) and results[CRASH].issue.code == "reader_crashed"
    assert [r for i, r in enumerate(results) if i != CRASH] == [i * i for i in range(40) if i != CRASH]


@pytest.mark.skipif(ctypes.sizeof(ctypes.c_void_p) != 8, reason="the layout checked is the 64-bit one")
def test_the_job_object_limits_are_laid_out_as_windows_expects():
    """JOBOBJECT_EXTENDED_LIMIT_INFORMATION on 64-bit Windows: 144 bytes, ProcessMemoryLimit at 112."""
    info = parallel._WindowsJob.limits(1024 * 1024 * 1024)
    assert ctypes.sizeof(info) == 144
    assert type(info).ProcessMemoryLimit.offset == 112
    assert info.ProcessMemoryLimit == 1024 ** 3
    assert info.BasicLimitInformation.LimitFlags == 0x2000 | 0x100
    assert parallel._WindowsJob.create(256) is None or sys.platform == "win32"


def test_process_alive_tells_a_live_process_from_a_finished_one():
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert parallel.process_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not parallel.process_alive(child.pid)
    assert parallel.process_alive(os.getpid())

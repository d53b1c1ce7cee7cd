"""Damaged copies of valid submissions: whatever the bytes, reading ends in a ReadResult.

Seeds are one valid form as .xlsx (openpyxl) and, when LibreOffice is installed, the same form saved
as .ods and .xls. Each example flips a few bytes of the file, or of one decompressed zip member
(so the XML itself is damaged, not only the deflate stream), and may cut the file short.
"""

from __future__ import annotations

import io
import itertools
import zipfile
from pathlib import Path

import pytest
from hostile import aborts_expected, form_bytes, form_values, read_in_child, soffice_convert
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipeline.core.form import load_form
from pipeline.read.isolated import IsolationSettings, ReaderPool
from pipeline.core.issues import Issue
from pipeline.read.spreadsheet import ReadResult

# Exception texts tolerated from a parser; none are known today, so any escape fails the test.
KNOWN_ESCAPES: tuple[str, ...] = ()

UNIT_LINE = "BCH HUYỆN ĐOÀN DẦU TIẾNG"


@pytest.fixture(scope="module")
def form():
    return load_form()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("seeds")
    source = folder / "seed.xlsx"
    source.write_bytes(form_bytes(UNIT_LINE, form_values(5000)))
    found = {"xlsx": source.read_bytes()}
    for extension in ("ods", "xls"):
        converted = soffice_convert(source, extension, folder)
        if converted is not None:
            found[extension] = converted.read_bytes()
    return found


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def pool(form):
    isolation = IsolationSettings(workers=2, timeout_seconds=20, memory_mb=768)
    with aborts_expected(), ReaderPool(form, isolation) as readers:
        yield readers


@pytest.fixture(scope="module")
def seeds_read_cleanly(seeds, form, scratch):
    """The property means nothing if an undamaged seed were already rejected."""
    for kind, data in seeds.items():
        path = scratch / f"seed.{kind}"
        path.write_bytes(data)
        outcome = read_in_child(path, form)
        assert outcome.result is not None and not outcome.result.rejected, (kind, outcome)
    return sorted(seeds)


damage = st.fixed_dictionaries({
    "seed": st.sampled_from(["xlsx", "ods", "xls"]),
    "inside_member": st.booleans(),
    "member": st.integers(0, 63),
    "flips": st.lists(st.tuples(st.integers(0, 1 << 24), st.integers(0, 255)), min_size=0, max_size=8),
    "cut": st.one_of(st.none(), st.integers(0, 1 << 24)),
})

_names = itertools.count()


def damaged(seeds: dict[str, bytes], case: dict) -> tuple[str, bytes]:
    kind = case["seed"] if case["seed"] in seeds else "xlsx"
    data = seeds[kind]
    if case["inside_member"] and kind != "xls" and case["flips"]:
        data = _damage_member(data, case["member"], case["flips"])
    else:
        buffer = bytearray(data)
        for position, value in case["flips"]:
            buffer[position % len(buffer)] = value
        data = bytes(buffer)
    if case["cut"] is not None:
        data = data[: case["cut"] % (len(data) + 1)]
    return kind, data


def _damage_member(data: bytes, member: int, flips: list[tuple[int, int]]) -> bytes:
    """Rezip with one member's decompressed bytes damaged; order and compression kept."""
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        entries = [(info, source.read(info.filename)) for info in source.infolist()]
    target_index = member % len(entries)
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w") as target:
        for index, (info, content) in enumerate(entries):
            if index == target_index and content:
                buffer = bytearray(content)
                for position, value in flips:
                    buffer[position % len(buffer)] = value
                content = bytes(buffer)
            target.writestr(info, content)
    return output.getvalue()


def _write(scratch: Path, kind: str, data: bytes) -> Path:
    path = scratch / f"case{next(_names)}.{kind}"
    path.write_bytes(data)
    return path


def _verdict(result: ReadResult) -> str:
    return ", ".join(sorted({i.code for i in result.issues if i.severity == "error"})) or "read"


def _assert_result(result) -> None:
    assert isinstance(result, ReadResult), type(result)
    assert isinstance(result.issues, list)
    assert all(isinstance(issue, Issue) for issue in result.issues), result.issues
    if result.format == "rejected":
        assert any(issue.severity == "error" for issue in result.issues), result.issues


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=damage)
def test_direct_read_of_damaged_file_returns_a_result(case, seeds, form, scratch, pool, seeds_read_cleanly):
    kind, data = damaged(seeds, case)
    path = _write(scratch, kind, data)
    outcome = read_in_child(path, form)
    if outcome.raised.startswith(KNOWN_ESCAPES):
        event(f"{kind}: known escape {outcome.raised.split(':')[0]}")
        return
    assert not outcome.raised, outcome.raised
    if outcome.signal:
        event(f"{kind}: reader died by signal {outcome.signal}")
        # A parser abort cannot be caught in-process; that is what the pool is for: it must contain it.
        [[contained]] = pool.read_all([path])
        _assert_result(contained.result)
        assert {i.code for i in contained.result.issues} & {"reader_crashed", "reader_out_of_memory",
                                                             "reader_timeout"}
        return
    _assert_result(outcome.result)
    event(f"{kind}: {_verdict(outcome.result)}")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=damage)
def test_pooled_read_of_damaged_file_returns_a_result(case, seeds, scratch, pool, seeds_read_cleanly):
    kind, data = damaged(seeds, case)
    path = _write(scratch, kind, data)
    [[outcome]] = pool.read_all([path])
    _assert_result(outcome.result)
    event(f"{kind}: {_verdict(outcome.result)}")
    assert outcome.sha256 or outcome.result.format == "rejected"

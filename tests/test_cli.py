"""The command line as staff and downstream tools use it."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from builders import FormSpec, default_values, write_openpyxl
from click.testing import CliRunner
from conftest import REGISTRY, only_run_folder, read_csv, set_mtime

from pipeline.cli import main
from pipeline.outputs.csvexport import ISSUES_COLUMNS, SUBMISSIONS_COLUMNS, TOTALS_COLUMNS, VALUES_COLUMNS


def _unit_file(inbox: Path, registry, code: str, unit_line: str, name: str, changes: dict | None = None) -> Path:
    quotas = {y: registry.quotas[(code, y)] for y in (2021, 2022, 2023)}
    values = default_values(code, quotas=quotas)
    for (year, metric), value in (changes or {}).items():
        values[year][metric] = value
    return write_openpyxl(FormSpec(unit_line=unit_line, values=values), inbox / name)


@pytest.fixture
def small_inbox(inbox, registry):
    dt = _unit_file(inbox, registry, "DT", "BCH HUYỆN ĐOÀN DẦU TIẾNG", "Dầu Tiếng.xlsx")
    pg = _unit_file(inbox, registry, "PG", "BCH HUYỆN ĐOÀN PHÚ GIÁO", "Phú Giáo.xlsx")
    bad = _unit_file(inbox, registry, "TA", "BCH THÀNH ĐOÀN THUẬN AN", "Thuận An.xlsx",
                     {(2022, "admitted_pupils"): "mười"})
    (inbox / "~$Dầu Tiếng.xlsx").write_bytes(b"lock")
    for i, path in enumerate((dt, pg, bad)):
        set_mtime(path, 1_706_000_000 + i * 60)
    return inbox


def _hashes(folder: Path) -> dict[str, tuple[str, float]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime)
            for p in folder.iterdir() if p.is_file()}


def test_run_writes_the_contract(small_inbox, outbox, registry):
    before = _hashes(small_inbox)
    result = CliRunner().invoke(main, ["run", "--inbox", str(small_inbox), "--outbox", str(outbox),
                                       "--registry", str(REGISTRY)])
    assert result.exit_code == 0, result.output
    assert _hashes(small_inbox) == before
    run = only_run_folder(outbox)
    assert {p.name for p in run.iterdir()} >= {"tong_hop.xlsx", "submissions.csv", "values.csv", "totals.csv",
                                               "issues.csv"}
    for name, columns in (("submissions.csv", SUBMISSIONS_COLUMNS), ("values.csv", VALUES_COLUMNS),
                          ("totals.csv", TOTALS_COLUMNS), ("issues.csv", ISSUES_COLUMNS)):
        header = (run / name).read_text(encoding="utf-8").splitlines()[0]
        assert header == ",".join(columns)
    submissions = {(r["file"], r["unit_code"]): r for r in read_csv(run / "submissions.csv")}
    assert submissions[("Dầu Tiếng.xlsx", "DT")]["status"] == "accepted"
    assert submissions[("Phú Giáo.xlsx", "PG")]["status"] == "accepted"
    ta = submissions[("Thuận An.xlsx", "TA")]
    assert (ta["status"], ta["errors"]) == ("rejected", "1")
    assert submissions[("~$Dầu Tiếng.xlsx", "")]["status"] == "ignored"
    missing = [code for (file, code), r in submissions.items() if r["status"] == "missing" and file == ""]
    assert sorted(missing) == sorted(u.code for u in registry.units if u.code not in ("DT", "PG", "TA"))
    dt = submissions[("Dầu Tiếng.xlsx", "DT")]
    assert dt["sha256"] == hashlib.sha256((small_inbox / "Dầu Tiếng.xlsx").read_bytes()).hexdigest()
    assert dt["modified_at"].startswith("2024-01-23T")
    values = read_csv(run / "values.csv")
    assert len(values) == 2 * 3 * 7
    assert {r["unit_code"] for r in values} == {"DT", "PG"}
    dt_2022 = next(r for r in values if (r["unit_code"], r["year"], r["metric"]) == ("DT", "2022", "members_total"))
    assert (dt_2022["sheet"], dt_2022["cell"]) == ("Biểu mẫu", "C11")
    totals = {(r["year"], r["metric"]): int(r["value"]) for r in read_csv(run / "totals.csv")}
    assert len(totals) == 21
    for (year, metric), value in totals.items():
        assert value == sum(int(r["value"]) for r in values if (r["year"], r["metric"]) == (year, metric))
    issues = read_csv(run / "issues.csv")
    word = next(i for i in issues if i["code"] == "value_not_number")
    assert (word["unit_code"], word["file"], word["sheet"], word["cell"], word["severity"]) == (
        "TA", "Thuận An.xlsx", "Biểu mẫu", "F11", "error")
    assert "mười" in word["message"]


def test_run_never_touches_older_runs(small_inbox, outbox):
    runner = CliRunner()
    args = ["run", "--inbox", str(small_inbox), "--outbox", str(outbox), "--registry", str(REGISTRY)]
    assert runner.invoke(main, args).exit_code == 0
    first = only_run_folder(outbox)
    snapshot = _hashes(first)
    assert runner.invoke(main, [*args, "--force"]).exit_code == 0
    runs = sorted(p for p in outbox.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(runs) == 2 and first in runs
    assert _hashes(first) == snapshot


def test_check_prints_verdicts_and_writes_nothing(small_inbox, tmp_path):
    files = sorted(str(p) for p in small_inbox.glob("*.xlsx") if not p.name.startswith("~$"))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(main, ["check", *files, "--registry", str(REGISTRY)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert "Dầu Tiếng.xlsx: HỢP LỆ — đơn vị: Huyện đoàn Dầu Tiếng (DT); 0 lỗi, 0 cảnh báo" in result.output
    assert "Thuận An.xlsx: TRẢ LẠI — đơn vị: Thành đoàn Thuận An (TA); 1 lỗi" in result.output
    assert "Biểu mẫu!F11" in result.output and "mười" in result.output


def test_malformed_registry_stops_the_run_naming_sheet_and_row(small_inbox, outbox, tmp_path):
    import xlsxwriter

    broken = tmp_path / "don_vi.xlsx"
    book = xlsxwriter.Workbook(broken)
    units = book.add_worksheet("ĐƠN VỊ ")
    for r, row in enumerate([("mã đơn vị", "TÊN ĐƠN VỊ", "Tên gọi khác", "Email"), ("DT", "Huyện đoàn Dầu Tiếng"),
                             ("DT", "Huyện đoàn Phú Giáo")]):
        for c, value in enumerate(row):
            units.write_string(r, c, value)
    book.close()
    result = CliRunner().invoke(main, ["run", "--inbox", str(small_inbox), "--outbox", str(outbox),
                                       "--registry", str(broken)])
    assert result.exit_code == 2
    assert "ĐƠN VỊ" in result.output and "dòng 3" in result.output and "trùng" in result.output
    assert not outbox.exists() or not [p for p in outbox.iterdir() if p.is_dir()]


def test_missing_registry_quota_sheet_header_is_reported(small_inbox, outbox, tmp_path):
    import xlsxwriter

    broken = tmp_path / "don_vi.xlsx"
    book = xlsxwriter.Workbook(broken)
    units = book.add_worksheet("Don vi")
    units.write_row(0, 0, ["Mã đơn vị", "Tên đơn vị"])
    units.write_row(1, 0, ["DT", "Huyện đoàn Dầu Tiếng"])
    quotas = book.add_worksheet("Chi tieu")
    quotas.write_row(0, 0, ["Mã đơn vị", "Năm", "Chỉ tiêu"])
    quotas.write_row(1, 0, ["DT", 2021, "hai mươi"])
    book.close()
    result = CliRunner().invoke(main, ["run", "--inbox", str(small_inbox), "--outbox", str(outbox),
                                       "--registry", str(broken)])
    assert result.exit_code == 2
    assert "Chi tieu" in result.output and "dòng 2" in result.output


def test_python_dash_m_runs_the_same_cli(small_inbox, outbox):
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", "--inbox", str(small_inbox), "--outbox",
                           str(outbox), "--registry", str(REGISTRY)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (only_run_folder(outbox) / "submissions.csv").exists()
    assert "2/18 đơn vị hợp lệ" in done.stdout


@pytest.mark.parametrize(
    ("args", "code", "stream", "text"),
    [
        (["--version"], 0, "stdout", "tonghop, version"),
        (["run", "--inbox", "{tmp}/nope"], 2, "stderr", "Không tìm thấy thư mục hộp thư"),
        (["bogus"], 2, "stderr", "No such command"),
    ],
)
def test_the_command_exits_with_its_code_and_all_its_output(args, code, stream, text, tmp_path):
    """The command leaves without tearing the interpreter down; nothing it printed may be lost."""
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    done = subprocess.run([sys.executable, "-m", "pipeline", *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == code
    assert text in getattr(done, stream)


def test_run_on_missing_inbox_cannot_run(tmp_path):
    result = CliRunner().invoke(main, ["run", "--inbox", str(tmp_path / "nope"), "--outbox", str(tmp_path / "o")])
    assert result.exit_code != 0


def test_the_workbook_written_in_a_forked_process_is_the_same(small_inbox, tmp_path, registry):
    from openpyxl import load_workbook

    from pipeline.outputs.runfolder import write_outputs
    from pipeline.run import Options, process_inbox

    consolidation = process_inbox(small_inbox, Options(registry=REGISTRY))
    inline, forked = tmp_path / "inline", tmp_path / "forked"
    inline.mkdir()
    forked.mkdir()
    write_outputs(consolidation, inline, {}, parallel_from=10**9)
    write_outputs(consolidation, forked, {}, parallel_from=0)
    assert sorted(p.name for p in inline.rglob("*")) == sorted(p.name for p in forked.rglob("*"))
    for name in ("values.csv", "totals.csv", "submissions.csv", "issues.csv"):
        assert (inline / name).read_bytes() == (forked / name).read_bytes()
    one, two = load_workbook(inline / "tong_hop.xlsx"), load_workbook(forked / "tong_hop.xlsx")
    assert one.sheetnames == two.sheetnames
    for sheet in one.sheetnames:
        assert [[c.value for c in row] for row in one[sheet].iter_rows()] == \
            [[c.value for c in row] for row in two[sheet].iter_rows()]

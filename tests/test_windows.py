"""What a Windows office PC brings: Notepad's byte-order mark, backslash paths, a cp1252 console."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REGISTRY, ROOT

from pipeline.core.config import ConfigError, load_config


def test_a_config_saved_by_notepad_with_a_bom_loads(tmp_path):
    path = tmp_path / "tonghop.toml"
    path.write_bytes("\ufeff[paths]\ninbox = 'hộp thư'\n[report]\nprovince = 'Bình Dương'\n".encode("utf-8"))
    config = load_config(path)
    assert config.paths.inbox == tmp_path / "hộp thư"
    assert config.report.province == "Bình Dương"


def test_a_windows_path_in_double_quotes_gets_a_hint(tmp_path):
    path = tmp_path / "tonghop.toml"
    path.write_text('[paths]\ninbox = "C:\\Users\\ban\\inbox"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "dấu nháy đơn" in str(caught.value) and "'C:\\Users" in str(caught.value)


def test_a_windows_path_in_single_quotes_is_taken_as_written(tmp_path):
    path = tmp_path / "tonghop.toml"
    path.write_text("[paths]\noutbox = 'C:\\Users\\Ban To chuc\\ket qua'\n", encoding="utf-8")
    assert str(load_config(path).paths.outbox).endswith("C:\\Users\\Ban To chuc\\ket qua")


@pytest.mark.parametrize("encoding", ["cp1252", "cp1258", "ascii"])
def test_output_to_a_redirected_file_never_raises_whatever_the_code_page(tmp_path, encoding):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "Báo cáo Dầu Tiếng.xlsx").write_bytes((ROOT / "inbox" / "EIU_BaoCaoPTD.xlsx").read_bytes())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": encoding}
    env.pop("PYTHONUTF8", None)
    with open(tmp_path / "log.txt", "wb") as log:
        done = subprocess.run([sys.executable, "-m", "pipeline", "run", "--inbox", str(inbox), "--outbox",
                               str(tmp_path / "outbox"), "--registry", str(REGISTRY)], stdout=log, stderr=log,
                              env=env, timeout=120)
    output = (tmp_path / "log.txt").read_bytes().decode("utf-8")
    assert done.returncode == 0, output
    assert "Traceback" not in output
    assert "Đã tổng hợp 1 tệp" in output  # UTF-8 into a file, whatever the console's code page


def test_the_windows_files_tonghop_writes_have_legal_names(tmp_path):
    from pipeline.nightly.schedule import TASK_CMD, TASK_LOG, TASK_XML

    reserved = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
    for name in (TASK_CMD, TASK_LOG, TASK_XML):
        assert Path(name).stem.lower() not in reserved and not name.endswith((".", " "))
        assert not set(name) & set('<>:"/\\|?*')


def test_a_run_whose_readers_cannot_start_stops_with_exit_2_and_blames_no_unit(tmp_path):
    """Every reader dying the same way is the installation's failure: no verdict, no feedback, exit 2."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("EIU_BaoCaoPTD.xlsx", "Bao cao PTD Ben Cat.xlsx", "KhoiCQ_baocao_PTD.ods"):
        (inbox / name).write_bytes((ROOT / "inbox" / name).read_bytes())
    paths = [str(ROOT / "tests" / "broken_install"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", "--inbox", str(inbox), "--outbox",
                           str(tmp_path / "outbox"), "--registry", str(REGISTRY)], capture_output=True, env=env,
                          cwd=ROOT, timeout=120)
    output = (done.stdout + done.stderr).decode("utf-8")
    assert done.returncode == 2, output
    assert "Không khởi động được trình đọc tệp (mã thoát 9, 3 lần liên tiếp)" in output
    assert "Traceback" not in output
    assert not [p for p in (tmp_path / "outbox").iterdir() if p.is_dir()]  # no run folder, no feedback copy
    status = subprocess.run([sys.executable, "-m", "pipeline", "status", "--outbox", str(tmp_path / "outbox"),
                             "--inbox", str(inbox)], capture_output=True, cwd=ROOT, timeout=60,
                            env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert "failed" in status.stdout.decode("utf-8")


def _text_opens_without_encoding(tree) -> list[int]:
    """Lines where a text file is opened without naming its encoding (open, Path.open, read_text,
    write_text, TextIOWrapper): Windows would use the ANSI code page (cp1252, cp1258) there."""
    import ast

    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        keywords = {k.arg for k in node.keywords}
        if "encoding" in keywords or name not in ("open", "read_text", "write_text", "TextIOWrapper"):
            continue
        if None in keywords:
            continue  # **kwargs passed through: the caller names the encoding
        if name == "open" and isinstance(node.func, ast.Attribute) and not (
                isinstance(node.func.value, ast.Name) and node.func.value.id in ("io", "builtins")):
            # os.open, ZipFile.open, gzip.open...: a text open only as Path.open with a text mode
            first = node.args[0] if node.args else None
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)
                    and re.fullmatch(r"[rwax]\+?t?", first.value)):
                continue
        elif name == "open":
            mode = next((a.value for a in node.args[1:2] if isinstance(a, ast.Constant)), None)
            mode = next((k.value.value for k in node.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)),
                        mode)
            if isinstance(mode, str) and "b" in mode:
                continue
        found.append(node.lineno)
    return found


def test_every_text_file_the_package_opens_names_its_encoding():
    import ast

    offenders = {}
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        lines = _text_opens_without_encoding(ast.parse(path.read_text(encoding="utf-8")))
        if lines:
            offenders[str(path.relative_to(ROOT))] = lines
    assert offenders == {}


def test_the_encoding_check_sees_a_text_open_without_encoding():
    import ast

    source = ("open(p)\nopen(p, 'rb')\nPath(p).read_text()\nPath(p).write_text(t, encoding='utf-8')\n"
              "os.open(p, 0)\nzf.open('content.xml')\nPath(p).open('w')\nopen(p, mode, **kw)\n")
    assert _text_opens_without_encoding(ast.parse(source)) == [1, 3, 7]


@pytest.mark.parametrize(("stem", "suffix", "expected"), [
    ("CON", ".xlsx", "_CON.xlsx"),
    ("lpt1", ".eml", "_lpt1.eml"),
    ("Aux.backup", ".xlsx", "_Aux.backup.xlsx"),
    ("DT - Huyện đoàn Dầu Tiếng", ".xlsx", "DT - Huyện đoàn Dầu Tiếng.xlsx"),
    ("đơn vị...", ".xlsx", "đơn vị.xlsx"),
    ("a<b>c:d\"e/f\\g|h?i*j\x01", ".xlsx", "a_b_c_d_e_f_g_h_i_j_.xlsx"),
    ("   ", ".xlsx", "tep.xlsx"),
    ("x" * 300, ".xlsx", "x" * 80 + ".xlsx"),
    ("CONSOLE", ".xlsx", "CONSOLE.xlsx"),
])
def test_names_tonghop_writes_are_legal_on_windows(stem, suffix, expected):
    from pipeline.core.files import portable_name

    assert portable_name(stem, suffix) == expected


def test_a_unit_whose_code_is_a_windows_device_name_gets_a_feedback_file_it_can_open():
    from pipeline.outputs.feedback import feedback_file_name

    assert feedback_file_name("CON") == "_CON.xlsx"
    assert feedback_file_name("DT") == "DT.xlsx"

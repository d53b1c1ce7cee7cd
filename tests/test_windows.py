"""What a Windows office PC brings: Notepad's byte-order mark, backslash paths, a cp1252 console."""

from __future__ import annotations

import os
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

"""Configuration is checked as a whole before any work: every bad value exits 2 naming `[section] key`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import fields
from datetime import date
from pathlib import Path

import pytest
from conftest import REGISTRY, ROOT

from pipeline.core.config import (RULES, Config, ConfigError, MailConfig, PathsConfig, ReportConfig, load_config)
from pipeline.nightly.job import mail_settings
from pipeline.mail.notify import MailSettings

# The README's example (section "Configuration"), kept here so the exact values can be asserted.
EXAMPLE = """\
[paths]
inbox = "inbox"
outbox = "outbox"
registry = "templates/don_vi.xlsx"

[report]
province = "Bình Dương"
deadline = 2024-02-10
settle_seconds = 120
unit_sheet_limit = 60
feedback_limit = 60
workers = 2
timeout_seconds = 30

[mail]
host = "smtp.example.vn"
port = 587
security = "starttls"
user = "tonghop@example.vn"
password_env = "TONGHOP_SMTP_PASSWORD"
sender = "tonghop@example.vn"
to = ["bantochuc@example.vn"]
cc = []
max_bytes = 20000000
feedback_to_units = false
retries = 3
backoff_seconds = 2.0
timeout_seconds = 30
"""


def with_value(section: str, key: str, literal: str) -> str:
    """EXAMPLE with `key` of `section` set to the TOML `literal`."""
    head, title, rest = EXAMPLE.partition(f"[{section}]\n")
    body, following, tail = rest.partition("\n[")
    body, count = re.subn(rf"^{key} = .*$", lambda _: f"{key} = {literal}", body, flags=re.M)
    assert count == 1, (section, key)
    return head + title + body + following + tail


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tonghop.toml"
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- the declared rules

def test_every_key_of_every_section_has_a_declared_rule():
    for section, cls in (("paths", PathsConfig), ("report", ReportConfig), ("mail", MailConfig)):
        assert set(RULES[section]) == {f.name for f in fields(cls)}, section


def test_the_defaults_are_valid(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no tonghop.toml here
    assert load_config() == Config()
    assert Config().validate() == Config()


def test_the_readme_example_loads_with_exact_values(tmp_path):
    config = load_config(write(tmp_path, EXAMPLE))
    assert config.paths == PathsConfig(inbox=tmp_path / "inbox", outbox=tmp_path / "outbox",
                                       registry=tmp_path / "templates/don_vi.xlsx")
    assert config.report == ReportConfig(province="Bình Dương", deadline=date(2024, 2, 10), settle_seconds=120.0,
                                         unit_sheet_limit=60, feedback_limit=60, workers=2, timeout_seconds=30.0)
    assert config.mail == MailConfig(host="smtp.example.vn", port=587, security="starttls", user="tonghop@example.vn",
                                     password_env="TONGHOP_SMTP_PASSWORD", sender="tonghop@example.vn",
                                     to=("bantochuc@example.vn",), cc=(), max_bytes=20_000_000,
                                     feedback_to_units=False, retries=3, backoff_seconds=2.0, timeout_seconds=30.0)
    assert config.mail.enabled
    assert mail_settings(config).port == 587  # what the file accepts, the mail code accepts


def test_the_readme_still_shows_a_valid_example(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"### Configuration.*?```toml\n(.*?)```", readme, re.S)
    assert block, "README.md lost its Configuration example"
    config = load_config(write(tmp_path, block.group(1)))
    assert config.mail.host == "smtp.example.vn" and config.mail.to == ("bantochuc@example.vn",)


# ---------------------------------------------------------------- bad values

BAD = [
    # (section, key, TOML literal)
    ("mail", "port", "0"),
    ("mail", "port", "70000"),
    ("mail", "port", "-25"),
    ("mail", "port", '"25"'),
    ("mail", "port", "25.0"),
    ("mail", "port", "true"),
    ("mail", "retries", "0"),
    ("mail", "retries", "11"),
    ("mail", "backoff_seconds", "-1"),
    ("mail", "backoff_seconds", "301"),
    ("mail", "backoff_seconds", "nan"),
    ("mail", "timeout_seconds", "0"),
    ("mail", "timeout_seconds", "-1"),
    ("mail", "timeout_seconds", "601"),
    ("mail", "timeout_seconds", "inf"),
    ("mail", "max_bytes", "999"),
    ("mail", "max_bytes", "0"),
    ("mail", "security", '"tls"'),
    ("mail", "security", '"STARTTLS"'),
    ("mail", "feedback_to_units", '"yes"'),
    ("mail", "host", '"smtp.example.vn\\r\\n"'),
    ("mail", "host", '"smtp.example.vn\\r\\nRCPT TO:<x@y.vn>"'),
    ("mail", "host", '"smtp.example.vn:587"'),
    ("mail", "host", '"smtp://smtp.example.vn"'),
    ("mail", "host", '"smtp example.vn"'),
    ("mail", "host", '" smtp.example.vn"'),
    ("mail", "host", '"-smtp.example.vn"'),
    ("mail", "host", '"smtp..example.vn"'),
    ("mail", "host", '"999.1.1.1"'),
    ("mail", "user", '"tonghop\\r\\n@example.vn"'),
    ("mail", "user", '"tong\\u0000hop"'),
    ("mail", "user", '"tong\\thop"'),
    ("mail", "sender", '"tonghop@example.vn\\r\\nBcc: z@w.vn"'),
    ("mail", "sender", '"x@y\\r\\nBcc: z@w"'),
    ("mail", "sender", '"""tonghop@example.vn\nBcc: z@w.vn"""'),
    ("mail", "sender", '"a@"'),
    ("mail", "sender", '"@example.vn"'),
    ("mail", "sender", '"not an address"'),
    ("mail", "sender", '"a b@example.vn"'),
    ("mail", "sender", '"a@@example.vn"'),
    ("mail", "sender", '"a@example..vn"'),
    ("mail", "sender", '"a@example.vn."'),
    ("mail", "sender", '"a@example.vn garbage"'),
    ("mail", "sender", '"nguyễn@example.vn"'),
    ("mail", "sender", '"a@tỉnhđoàn.vn"'),
    ("mail", "sender", '"a@example.vn, b@example.vn"'),
    ("mail", "sender", '"a@example.vn; b@example.vn"'),
    ("mail", "sender", '"Tỉnh đoàn <a@>"'),
    ("mail", "sender", '"Tỉnh đoàn <a@example.vn"'),
    ("mail", "sender", '"<>"'),
    ("mail", "sender", "3"),
    ("mail", "sender", '""'),  # required once host is set
    ("mail", "to", '["a@"]'),
    ("mail", "to", '["bantochuc@example.vn", "not an address"]'),
    ("mail", "to", '"not an address"'),
    ("mail", "to", '[""]'),
    ("mail", "to", '["   "]'),
    ("mail", "to", '["bantochuc@example.vn\\r\\nBcc: z@w.vn"]'),
    ("mail", "to", '["a@example.vn, b@example.vn"]'),
    ("mail", "to", "[3]"),
    ("mail", "to", "[]"),  # host set, nobody to send to: nothing would ever be sent
    ("mail", "cc", '["a@"]'),
    ("mail", "cc", '["lanhdao@example.vn\\nBcc: z@w.vn"]'),
    ("mail", "password_env", '"MẬT_KHẨU"'),
    ("mail", "password_env", '"1ABC"'),
    ("mail", "password_env", '"A-B"'),
    ("mail", "password_env", '"A B"'),
    ("mail", "password_env", '"TONGHOP\\r\\nX"'),
    ("report", "workers", "0"),
    ("report", "workers", "300"),
    ("report", "workers", "2.5"),
    ("report", "timeout_seconds", "0"),
    ("report", "timeout_seconds", "0.05"),
    ("report", "timeout_seconds", "3601"),
    ("report", "timeout_seconds", "nan"),
    ("report", "settle_seconds", "-1"),
    ("report", "settle_seconds", "inf"),
    ("report", "unit_sheet_limit", "-1"),
    ("report", "feedback_limit", "-1"),
    ("report", "province", '""'),
    ("report", "province", '"   "'),
    ("report", "province", '"Bình Dương\\r\\n"'),
    ("report", "deadline", "2024-02-10T08:00:00"),
    ("report", "deadline", '"10/02/2024"'),
    ("paths", "inbox", '"hop\\u0000thu"'),
    ("paths", "outbox", '"ket\\nqua"'),
    ("paths", "registry", '""'),
]


@pytest.mark.parametrize(("section", "key", "literal"), BAD, ids=[f"{s}.{k}={v}" for s, k, v in BAD])
def test_a_bad_value_is_refused_naming_its_key(tmp_path, section, key, literal):
    path = write(tmp_path, with_value(section, key, literal))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert f"[{section}] {key}" in message
    assert message.startswith(f"Cấu hình [{section}] {key}: ")
    assert "\r" not in message and "\x00" not in message  # the bad value is shown escaped, on one line


def test_host_without_sender_keeps_its_message(tmp_path):
    path = write(tmp_path, '[mail]\nhost = "smtp.example.vn"\nto = ["bantochuc@example.vn"]\n')
    with pytest.raises(ConfigError, match=r"\[mail\] sender: cần địa chỉ người gửi"):
        load_config(path)


@pytest.mark.parametrize("key", ["password", "Password", "smtp_password", "passwd", "mat_khau"])
def test_a_password_in_the_file_is_refused_and_never_repeated(tmp_path, key):
    path = write(tmp_path, EXAMPLE + f'{key} = "bí-mật-lộ"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert f"[mail] {key}" in message and "password_env" in message and "biến môi trường" in message
    assert "bí-mật-lộ" not in message


def test_a_password_in_another_section_is_refused_too(tmp_path):
    path = write(tmp_path, EXAMPLE.replace("[report]\n", '[report]\npassword = "lộ"\n'))
    with pytest.raises(ConfigError, match=r"\[report\] password: .*password_env") as caught:
        load_config(path)
    assert "lộ" not in str(caught.value)


def test_every_bad_key_is_named_in_one_message(tmp_path):
    text = with_value("mail", "port", "70000").replace("retries = 3", "retries = 0")
    text = text.replace("workers = 2", "workers = 300").replace('to = ["bantochuc@example.vn"]', 'to = ["a@"]')
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    message = str(caught.value)
    assert message.startswith(f"Tệp cấu hình {tmp_path / 'tonghop.toml'} có 4 lỗi")
    for key in ("[report] workers", "[mail] port", "[mail] retries", "[mail] to"):
        assert key in message


def test_a_wrongly_typed_key_is_named_once(tmp_path):
    # sender = 3 keeps the default "" — that must not add "sender required" on top of the type error.
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, with_value("mail", "sender", "3")))
    assert str(caught.value).count("[mail] sender") == 1 and "phải là" in str(caught.value)


def test_a_wrong_type_says_what_is_expected(tmp_path):
    with pytest.raises(ConfigError, match=r"\[mail\] to: .* phải là một địa chỉ hoặc danh sách địa chỉ"):
        load_config(write(tmp_path, with_value("mail", "to", "[3]")))
    with pytest.raises(ConfigError, match=r"\[mail\] port: giá trị '25' không hợp lệ — phải là một số nguyên"):
        load_config(write(tmp_path, with_value("mail", "port", '"25"')))


def test_the_message_states_the_bound(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, with_value("mail", "port", "70000")))
    assert str(caught.value) == ("Cấu hình [mail] port: giá trị 70000 không hợp lệ — phải là số nguyên từ 1 đến "
                                 "65535.")


# ---------------------------------------------------------------- good values

GOOD = [
    ("mail", "port", "1", 1),
    ("mail", "port", "65535", 65535),
    ("mail", "retries", "1", 1),
    ("mail", "retries", "10", 10),
    ("mail", "backoff_seconds", "0", 0.0),
    ("mail", "backoff_seconds", "300", 300.0),
    ("mail", "timeout_seconds", "0.5", 0.5),
    ("mail", "timeout_seconds", "600", 600.0),
    ("mail", "max_bytes", "1000", 1000),
    ("mail", "security", '"ssl"', "ssl"),
    ("mail", "security", '"none"', "none"),
    ("mail", "host", '"localhost"', "localhost"),
    ("mail", "host", '"mailserver"', "mailserver"),
    ("mail", "host", '"127.0.0.1"', "127.0.0.1"),
    ("mail", "host", '"::1"', "::1"),
    ("mail", "host", '"smtp.tỉnhđoàn.vn"', "smtp.tỉnhđoàn.vn"),
    ("mail", "user", '""', ""),
    ("mail", "user", '"Tỉnh đoàn"', "Tỉnh đoàn"),
    ("mail", "password_env", '""', ""),
    ("mail", "password_env", '"_SMTP_PASS_2"', "_SMTP_PASS_2"),
    ("mail", "sender", '"Tỉnh đoàn Bình Dương <tinhdoan@example.vn>"', "Tỉnh đoàn Bình Dương <tinhdoan@example.vn>"),
    ("mail", "sender", '"\\"Ban Tổ chức, Tỉnh đoàn\\" <btc@example.vn>"', '"Ban Tổ chức, Tỉnh đoàn" <btc@example.vn>'),
    ("mail", "sender", '"tonghop@localhost"', "tonghop@localhost"),
    ("mail", "sender", '"first.last+tag@sub.example.vn"', "first.last+tag@sub.example.vn"),
    ("mail", "to", '"bantochuc@example.vn"', ("bantochuc@example.vn",)),
    ("mail", "to", '["Ban Tổ chức <btc@example.vn>", "lanhdao@example.vn"]',
     ("Ban Tổ chức <btc@example.vn>", "lanhdao@example.vn")),
    ("mail", "cc", '["  lanhdao@example.vn  "]', ("  lanhdao@example.vn  ",)),
    ("mail", "feedback_to_units", "true", True),
    ("report", "workers", "1", 1),
    ("report", "workers", "64", 64),
    ("report", "timeout_seconds", "0.1", 0.1),
    ("report", "timeout_seconds", "3600", 3600.0),
    ("report", "settle_seconds", "0", 0.0),
    ("report", "unit_sheet_limit", "0", 0),
    ("report", "feedback_limit", "0", 0),
    ("report", "deadline", '"2024-02-10"', date(2024, 2, 10)),
    ("report", "province", '"Thành phố Hồ Chí Minh"', "Thành phố Hồ Chí Minh"),
]


@pytest.mark.parametrize(("section", "key", "literal", "expected"), GOOD,
                         ids=[f"{s}.{k}={v}" for s, k, v, _ in GOOD])
def test_a_good_value_loads_exactly_and_the_mail_code_accepts_it(tmp_path, section, key, literal, expected):
    config = load_config(write(tmp_path, with_value(section, key, literal)))
    assert getattr(getattr(config, section), key) == expected
    settings = mail_settings(config)  # raised MailConfigError late, after every file was read
    assert isinstance(settings, MailSettings)


def test_no_smtp_needs_no_sender_nor_recipients(tmp_path):
    config = load_config(write(tmp_path, '[mail]\nhost = ""\nfeedback_to_units = true\n'))
    assert not config.mail.enabled and config.mail.sender == ""
    mail_settings(config)


# ---------------------------------------------------------------- values set in code or by flags

def test_validate_checks_a_config_built_in_code():
    with pytest.raises(ConfigError, match=r"\[mail\] port"):
        Config(mail=MailConfig(port=70000)).validate()
    with pytest.raises(ConfigError, match=r"\[mail\] sender"):
        Config(mail=MailConfig(host="smtp.example.vn", sender="a@\r\nBcc: x@y.vn", to=("b@example.vn",))).validate()
    with pytest.raises(ConfigError, match=r"\[paths\] inbox"):
        Config(paths=PathsConfig(inbox="inbox")).validate()  # a str where a Path belongs


def test_validate_after_command_line_overrides():
    config = Config().with_report(workers=300, timeout_seconds=0.0)
    with pytest.raises(ConfigError) as caught:
        config.validate()
    assert "[report] workers" in str(caught.value) and "[report] timeout_seconds" in str(caught.value)
    assert Config().with_report(workers=64, timeout_seconds=0.1).validate().report.workers == 64


# ---------------------------------------------------------------- through the real command

def tonghop_command() -> list[str]:
    script = Path(sys.executable).parent / "tonghop"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pipeline"]


def test_a_bad_port_stops_the_run_before_any_work(tmp_path):
    inbox, outbox = tmp_path / "hop_thu", tmp_path / "ket_qua"
    inbox.mkdir()
    sample = next(p for p in sorted((ROOT / "inbox").iterdir()) if p.suffix == ".xlsx")
    shutil.copy2(sample, inbox / sample.name)
    config = tmp_path / "tonghop.toml"
    config.write_text(f'[paths]\nregistry = "{REGISTRY}"\n\n[mail]\nhost = "smtp.example.vn"\nport = 70000\n'
                      'sender = "tonghop@example.vn"\nto = ["bantochuc@example.vn"]\n', encoding="utf-8")
    done = subprocess.run([*tonghop_command(), "run", "--config", str(config), "--inbox", str(inbox),
                           "--outbox", str(outbox)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Cấu hình [mail] port: giá trị 70000 không hợp lệ" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "Đã tổng hợp" not in done.stdout
    assert not outbox.exists() or not any(outbox.iterdir())  # no run folder, no ledger, no log

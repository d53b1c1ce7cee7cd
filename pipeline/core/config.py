"""`tonghop.toml`: where things live, how the report reads, and how mail goes out.

Read from the working directory, or from `--config PATH`; command-line flags override it. With no
file at all the defaults reproduce `make demo`. Passwords never live in the file: only the name of
the environment variable that holds one.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from typing import Any

CONFIG_NAME = "tonghop.toml"


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key (in Vietnamese)."""


@dataclass(frozen=True)
class PathsConfig:
    inbox: Path = Path("inbox")
    outbox: Path = Path("outbox")
    registry: Path = Path("templates/don_vi.xlsx")
    form: Path | None = None  # None: the bundled form definition
    ledger: Path | None = None  # None: <outbox>/tonghop.sqlite
    log: Path | None = None  # None: <outbox>/tonghop.log

    @property
    def ledger_path(self) -> Path:
        return self.ledger or self.outbox / "tonghop.sqlite"

    @property
    def log_path(self) -> Path:
        return self.log or self.outbox / "tonghop.log"


@dataclass(frozen=True)
class ReportConfig:
    province: str = "Bình Dương"
    deadline: date | None = None
    settle_seconds: float = 0.0  # recommended 120 for a nightly job; 0 keeps ad-hoc runs immediate
    unit_sheet_limit: int = 60
    feedback_limit: int = 60  # above this many units with issues, no per-unit feedback copies are written
    workers: int = 2
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class MailConfig:
    host: str = ""
    port: int = 587
    security: str = "starttls"  # starttls | ssl | none
    user: str = ""
    password_env: str = "TONGHOP_SMTP_PASSWORD"
    sender: str = ""
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    max_bytes: int = 20_000_000
    feedback_to_units: bool = False
    retries: int = 3
    backoff_seconds: float = 2.0
    timeout_seconds: float = 30.0

    @property
    def enabled(self) -> bool:
        return bool(self.host and self.to)

    def password(self) -> str:
        return os.environ.get(self.password_env, "") if self.password_env else ""


@dataclass(frozen=True)
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    mail: MailConfig = field(default_factory=MailConfig)
    source: Path | None = None

    def with_paths(self, **changes: Any) -> Config:
        return replace(self, paths=replace(self.paths, **{k: v for k, v in changes.items() if v is not None}))

    def with_report(self, **changes: Any) -> Config:
        return replace(self, report=replace(self.report, **{k: v for k, v in changes.items() if v is not None}))

    def validate(self) -> Config:
        """Check every value against `RULES` and the cross-key rules; raise one ConfigError naming every bad key.

        `load_config` calls it; a caller that overrides values afterwards (`with_paths`, `with_report`)
        calls it again before any work.
        """
        _raise(_problems(self))
        return self


# ------------------------------------------------------------------------------------------ validation
#
# One declared rule per key, checked for the file's values and for a Config built in code alike. A check
# returns None when the value is fine, else the Vietnamese reason; every key of every section must appear
# here (tests/test_config_validation.py checks it), so a new setting cannot ship without its bounds.
# Bounds match the command-line options: --workers 1–64, --timeout ≥ 0.1, --settle-seconds ≥ 0.

Check = Callable[[Any], "str | None"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_PART = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_BRACKETED = re.compile(r"(?P<name>[^<>]*)<(?P<addr>[^<>]*)>")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A secret written into the file: refused by name, and its value is never repeated in a message.
_SECRET_KEY = re.compile(r"(smtp_)?(password|passwd|pass|pwd|mat_?khau)", re.IGNORECASE)
_ADDRESS_FORM = "phải là một địa chỉ thư dạng ten@donvi.vn hoặc Tên <ten@donvi.vn>"


def _shown(value: Any) -> str:
    text = repr(str(value) if isinstance(value, Path) else value)
    return text if len(text) <= 80 else text[:77] + "…"


def _integer(low: int, high: int | None = None) -> Check:
    wanted = f"từ {low} đến {high}" if high is not None else f"từ {low} trở lên"

    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            return f"phải là số nguyên {wanted}"
        return None
    return check


def _number(low: float, high: float | None = None, *, above: bool = False) -> Check:
    """`above`: the low bound itself is excluded (a timeout of 0 s means nothing can finish)."""
    if above:
        wanted = f"lớn hơn {low}" + (f" và không quá {high}" if high is not None else "")
    else:
        wanted = f"từ {low} đến {high}" if high is not None else f"từ {low} trở lên"

    def check(value: Any) -> str | None:
        # nan and inf are valid TOML floats; neither is a usable number of seconds.
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or value < low or (above and value == low) or (high is not None and value > high)):
            return f"phải là một số {wanted}"
        return None
    return check


def _one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, str) or value not in choices:
            return "phải là " + " hoặc ".join(f'"{c}"' for c in choices)
        return None
    return check


def _non_empty(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else "không được để trống"


def _text(value: Any) -> str | None:
    """Any text: only the type, and the control-character check that every text gets."""
    return None if isinstance(value, str) else "phải là một chuỗi"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "phải là true hoặc false"


def _path(value: Any) -> str | None:
    return None if value is None or (isinstance(value, Path) and str(value).strip()) else "phải là một đường dẫn"


def _plain_date(value: Any) -> str | None:
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return None
    return "phải là một ngày dạng 2024-02-10 (không kèm giờ)"


def _is_host_name(name: str) -> bool:
    """LDH labels joined by dots (a single label such as "localhost" or an intranet name is fine)."""
    name = name[:-1] if name.endswith(".") else name
    if not 0 < len(name) <= 253 or re.fullmatch(r"[0-9.]+", name):  # all digits: only as an IP address
        return False
    return all(_HOST_LABEL.fullmatch(label) for label in name.split("."))


def _host(value: Any) -> str | None:
    if not isinstance(value, str):
        return "phải là một chuỗi"
    if value == "":
        return None  # no SMTP: the mail is written as an .eml file
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    try:
        ascii_name = value.encode("idna").decode("ascii")  # smtp.tỉnhđoàn.vn is a host name too
    except UnicodeError:
        ascii_name = ""
    if _is_host_name(ascii_name):
        return None
    return "phải là tên máy chủ thư (ví dụ smtp.example.vn) hoặc địa chỉ IP, không kèm giao thức, cổng hay khoảng trắng"


def _address(value: Any) -> str | None:
    """One address, bare or with a display name; exactly the address notify.MailSettings will read from it."""
    if not isinstance(value, str):
        return _ADDRESS_FORM
    if value == "":
        return None  # whether one is required is a cross-key rule
    text = value.strip()
    bracketed = _BRACKETED.fullmatch(text)
    addr = bracketed["addr"].strip() if bracketed else text
    if "," in addr or ";" in addr:
        return ("mỗi phần tử chỉ ghi một địa chỉ; nhiều người nhận thì ghi thành danh sách, "
                "ví dụ [\"a@x.vn\", \"b@x.vn\"]")
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain:
        return _ADDRESS_FORM
    if not addr.isascii():
        return "địa chỉ thư chỉ được dùng chữ không dấu (ASCII)"
    if len(local) > 64 or not _LOCAL_PART.fullmatch(local) or domain.endswith(".") or not _is_host_name(domain):
        return _ADDRESS_FORM
    name, parsed = parseaddr(text)
    if parsed != addr:  # the mail code would read another address out of this text
        return _ADDRESS_FORM
    try:
        Address(display_name=name, addr_spec=addr)
    except (ValueError, IndexError, HeaderParseError):
        return _ADDRESS_FORM
    return None


def _env_name(value: Any) -> str | None:
    if isinstance(value, str) and (value == "" or _ENV_NAME.fullmatch(value)):
        return None  # "" : no password (a relay that does not authenticate)
    return ("phải là tên một biến môi trường: chữ cái không dấu, chữ số và dấu gạch dưới, không bắt đầu bằng "
            "chữ số (ví dụ TONGHOP_SMTP_PASSWORD)")


RULES: dict[str, dict[str, Check]] = {
    "paths": {"inbox": _path, "outbox": _path, "registry": _path, "form": _path, "ledger": _path, "log": _path},
    "report": {
        "province": _non_empty,
        "deadline": _plain_date,
        "settle_seconds": _number(0),
        # 0 is meaningful for both limits: always one "Sai lệch" sheet / never per-unit feedback copies.
        "unit_sheet_limit": _integer(0),
        "feedback_limit": _integer(0),
        "workers": _integer(1, 64),
        "timeout_seconds": _number(0.1, 3600),
    },
    "mail": {
        "host": _host,
        "port": _integer(1, 65535),
        "security": _one_of("starttls", "ssl", "none"),
        "user": _text,
        "password_env": _env_name,
        "sender": _address,
        "to": _address,  # checked for each entry
        "cc": _address,
        "max_bytes": _integer(1000),
        "feedback_to_units": _boolean,
        "retries": _integer(1, 10),
        "backoff_seconds": _number(0, 300),
        "timeout_seconds": _number(0, 600, above=True),
    },
}

# Rules between keys: (section, key the message names, broken(config), reason).
CROSS_RULES: tuple[tuple[str, str, Callable[[Config], bool], str], ...] = (
    ("mail", "sender", lambda c: bool(c.mail.host) and not c.mail.sender,
     "cần địa chỉ người gửi khi đã khai báo [mail] host"),
    # Without recipients MailConfig.enabled is False: nothing, not even feedback mail, would ever be sent.
    ("mail", "to", lambda c: bool(c.mail.host) and not c.mail.to,
     "cần ít nhất một người nhận khi đã khai báo [mail] host (không có người nhận thì không thư nào được gửi)"),
)

_Problem = tuple[str, str, str]  # section, key, the whole Vietnamese message


def _problem(section: str, key: str, detail: str) -> _Problem:
    return section, key, f"Cấu hình [{section}] {key}: {detail}."


def _value_problem(section: str, key: str, value: Any, check: Check) -> _Problem | None:
    items = list(value) if isinstance(value, tuple) else [value]
    for index, item in enumerate(items, 1):
        text = str(item) if isinstance(item, (str, Path)) else None
        if isinstance(value, tuple):
            where = f"phần tử thứ {index} ({_shown(item)})"
            if not isinstance(item, str) or not item.strip():
                return _problem(section, key, f"{where} không hợp lệ — không được để trống")
        else:
            where = f"giá trị {_shown(item)}"
        if text is not None and _CONTROL.search(text):
            return _problem(section, key, f"{where} không hợp lệ — chứa ký tự điều khiển (xuống dòng CR/LF, NUL, "
                                          "tab…); hãy ghi trên một dòng")
        reason = check(item)
        if reason:
            return _problem(section, key, f"{where} không hợp lệ — {reason}")
    return None


def _problems(config: Config) -> list[_Problem]:
    found = []
    for section, rules in RULES.items():
        values = getattr(config, section)
        for key, check in rules.items():
            problem = _value_problem(section, key, getattr(values, key), check)
            if problem:
                found.append(problem)
    for section, key, broken, reason in CROSS_RULES:
        if not any((s, k) == (section, key) for s, k, _ in found) and broken(config):
            found.append(_problem(section, key, reason))
    return found


def _raise(problems: list[_Problem], where: str = "Cấu hình") -> None:
    if len(problems) == 1:
        raise ConfigError(problems[0][2])
    if problems:
        raise ConfigError(f"{where} có {len(problems)} lỗi, chưa chạy gì:\n"
                          + "\n".join(f"- {message}" for _, _, message in problems))


# --------------------------------------------------------------------------------------------- loading

# First match wins against the annotation text: "tuple[str, ...]" must meet "tuple" before "str".
_KIND_TEXT = {"tuple": "một địa chỉ hoặc danh sách địa chỉ (chuỗi)", "Path": "một đường dẫn (chuỗi không rỗng)",
              "date": "một ngày dạng 2024-02-10", "int": "một số nguyên", "float": "một số",
              "bool": "true hoặc false", "str": "một chuỗi"}


def _section(data: dict, name: str, cls: type, base: Path, problems: list[_Problem]) -> Any:
    raw = data.get(name, {})
    if not isinstance(raw, dict):
        raise ConfigError(f"Cấu hình [{name}] phải là một bảng (table).")
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if _SECRET_KEY.fullmatch(key):
            problems.append(_problem(name, key, "không được ghi mật khẩu vào tệp cấu hình; hãy đặt mật khẩu vào "
                                                "một biến môi trường và ghi tên biến đó vào [mail] password_env "
                                                "(mặc định TONGHOP_SMTP_PASSWORD)"))
        elif key not in known:
            problems.append((name, key, f"Cấu hình [{name}] có khoá không hợp lệ: \"{key}\" (các khoá hợp lệ: "
                                        f"{', '.join(known)})."))
        else:
            try:
                values[key] = _coerce(key, value, known[key].type, base)
            except (TypeError, ValueError):
                kind = next((text for word, text in _KIND_TEXT.items() if word in str(known[key].type)), "")
                detail = f"giá trị {_shown(value)} không hợp lệ" + (f" — phải là {kind}" if kind else "")
                problems.append(_problem(name, key, detail))
    return cls(**values)


def _coerce(key: str, value: Any, annotation: Any, base: Path) -> Any:
    """The TOML value as the field's type; TypeError/ValueError when it has the wrong type."""
    kind = str(annotation)
    if "Path" in kind:
        if not isinstance(value, str) or not value.strip():
            raise TypeError
        path = Path(value).expanduser()
        return path if path.is_absolute() else base / path
    if "date" in kind:
        if isinstance(value, datetime):  # a TOML date-time: a deadline is a day
            raise TypeError
        return value if isinstance(value, date) else date.fromisoformat(str(value))
    if "tuple" in kind:
        items = [value] if isinstance(value, str) else list(value)
        if not all(isinstance(i, str) for i in items):
            raise TypeError
        return tuple(items)
    if kind == "bool":
        if not isinstance(value, bool):
            raise TypeError
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError
        return float(value)
    if not isinstance(value, str):
        raise TypeError
    return value


def load_config(path: Path | None = None) -> Config:
    """The explicit file, else ./tonghop.toml, else the defaults. Relative paths are relative to the file.

    Every key is checked here (`Config.validate`), before any work: a bad value exits the command with
    one message naming each bad key, instead of failing the run after every file has been read.
    """
    if path is None:
        candidate = Path.cwd() / CONFIG_NAME
        if not candidate.exists():
            return Config().validate()
        path = candidate
    path = Path(path)
    try:
        # Notepad on Windows saves UTF-8 with a byte-order mark, which TOML itself does not allow.
        text = path.read_text(encoding="utf-8-sig")
        data = tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"Không đọc được tệp cấu hình {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Tệp cấu hình {path} phải được lưu dạng UTF-8.") from exc
    except tomllib.TOMLDecodeError as exc:
        hint = ""
        if re.search(r'"[A-Za-z]:\\|"\\\\', text) or "escape" in str(exc) or "hex value" in str(exc):
            hint = (" Đường dẫn Windows hãy viết trong dấu nháy đơn, ví dụ inbox = 'C:\\Users\\Ban To chuc\\inbox' "
                    "(trong dấu nháy kép, dấu \\ phải viết hai lần).")
        raise ConfigError(f"Tệp cấu hình {path} sai cú pháp TOML: {exc}.{hint}") from exc
    unknown = set(data) - {"paths", "report", "mail"}
    if unknown:
        raise ConfigError(f"Tệp cấu hình {path}: mục không hợp lệ {sorted(unknown)} (chỉ có [paths], [report], "
                          "[mail]).")
    base = path.resolve().parent
    problems: list[_Problem] = []
    config = Config(paths=_section(data, "paths", PathsConfig, base, problems),
                    report=_section(data, "report", ReportConfig, base, problems),
                    mail=_section(data, "mail", MailConfig, base, problems), source=path)
    # A key whose type was wrong kept its default; its value rules and cross rules would only add noise.
    named = {(section, key) for section, key, _ in problems}
    problems += [p for p in _problems(config) if (p[0], p[1]) not in named]
    _raise(problems, f"Tệp cấu hình {path}")
    return config

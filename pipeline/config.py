"""`tonghop.toml`: where things live, how the report reads, and how mail goes out.

Read from the working directory, or from `--config PATH`; command-line flags override it. With no
file at all the defaults reproduce `make demo`. Passwords never live in the file: only the name of
the environment variable that holds one.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from datetime import date
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

    def with_paths(self, **changes: Any) -> "Config":
        return replace(self, paths=replace(self.paths, **{k: v for k, v in changes.items() if v is not None}))

    def with_report(self, **changes: Any) -> "Config":
        return replace(self, report=replace(self.report, **{k: v for k, v in changes.items() if v is not None}))


def _section(data: dict, name: str, cls: type, base: Path) -> Any:
    raw = data.get(name, {})
    if not isinstance(raw, dict):
        raise ConfigError(f"Cấu hình [{name}] phải là một bảng (table).")
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"Cấu hình [{name}] có khoá không hợp lệ: \"{key}\" (các khoá hợp lệ: "
                              f"{', '.join(known)}).")
        values[key] = _coerce(name, key, value, known[key].type, base)
    return cls(**values)


def _coerce(section: str, key: str, value: Any, annotation: Any, base: Path) -> Any:
    where = f"[{section}] {key}"
    kind = str(annotation)
    try:
        if "Path" in kind:
            if not isinstance(value, str) or not value.strip():
                raise TypeError
            path = Path(value).expanduser()
            return path if path.is_absolute() else base / path
        if "date" in kind:
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
    except (TypeError, ValueError):
        raise ConfigError(f"Cấu hình {where}: giá trị {value!r} không hợp lệ.") from None


def load_config(path: Path | None = None) -> Config:
    """The explicit file, else ./tonghop.toml, else the defaults. Relative paths are relative to the file."""
    if path is None:
        candidate = Path.cwd() / CONFIG_NAME
        if not candidate.exists():
            return Config()
        path = candidate
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"Không đọc được tệp cấu hình {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Tệp cấu hình {path} sai cú pháp TOML: {exc}") from exc
    unknown = set(data) - {"paths", "report", "mail"}
    if unknown:
        raise ConfigError(f"Tệp cấu hình {path}: mục không hợp lệ {sorted(unknown)} (chỉ có [paths], [report], "
                          "[mail]).")
    base = path.resolve().parent
    mail = _section(data, "mail", MailConfig, base)
    if mail.security not in ("starttls", "ssl", "none"):
        raise ConfigError("Cấu hình [mail] security phải là \"starttls\", \"ssl\" hoặc \"none\".")
    if mail.host and not mail.sender:
        raise ConfigError("Cấu hình [mail] cần khoá sender (địa chỉ người gửi) khi đã khai báo host.")
    return Config(paths=_section(data, "paths", PathsConfig, base), report=_section(data, "report", ReportConfig, base),
                  mail=mail, source=path)

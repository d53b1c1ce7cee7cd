"""The form definition: loaded from a TOML file under `schemas/`, plain data from then on."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.formatting import format_percent
from pipeline.core.issues import Severity
from pipeline.core.textnorm import fold

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
DEFAULT_FORM = SCHEMAS_DIR / "phat_trien_dang_2021_2023.toml"

RULE_KINDS = ("min", "not_greater", "max_change", "total_row", "allocation")
ROLE_NAMES = ("members", "outstanding", "quota", "admitted")
# Fields a rule's explanation may use (filled in by `FormDefinition.explanation`).
EXPLANATION_FIELDS = ("percent", "min", "department")


class FormDefinitionError(ValueError):
    """The form definition file is not usable."""


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    match: tuple[tuple[str, ...], ...]
    exclude: tuple[str, ...] = ()
    group: str = ""
    sublabel: str = ""

    def matches(self, folded_header: str) -> bool:
        padded = f" {folded_header} "
        if any(f" {phrase} " in padded for phrase in self.exclude):
            return False
        return any(all(f" {phrase} " in padded for phrase in alternative) for alternative in self.match)


@dataclass(frozen=True)
class Rule:
    code: str
    kind: str
    severity: Severity  # checked on loading
    message: str
    left: tuple[str, ...] = ()
    right: tuple[str, ...] = ()
    cell: str = ""
    metric: str = ""
    min: int = 0
    max_ratio: float = 0.0
    explanation: str = ""  # for the unit: what is checked and how to fix it (the instructions sheet lists it)


@dataclass(frozen=True)
class Roles:
    """Which metric plays which part: what code needs to know of a metric beyond its key."""

    members: str
    outstanding: str
    quota: str
    admitted: tuple[str, ...]


@dataclass(frozen=True)
class Share:
    """One line of the report's shares: sum of `numerator` metrics over sum of `denominator` metrics."""

    key: str
    label: str
    numerator: tuple[str, ...]  # metric keys, role names already resolved
    denominator: tuple[str, ...]


@dataclass(frozen=True)
class Texts:
    """The fixed texts of the province report and of the copies handed out, from the `[texts]` table."""

    issuer: str  # "BCH ĐOÀN TỈNH {PROVINCE}"
    organisation: str
    mark: str
    department: str
    unit_of_measure: str
    report_place_date: str  # {province} {day} {month} {year}
    shares_title: str
    shares_header: str
    report_signature: tuple[str, ...]
    report_signature_hint: str
    form_place_date: str  # {year}
    form_recipients: tuple[str, ...]
    form_signature: tuple[str, ...]
    form_signature_hint: str

    def issuer_line(self, province: str) -> str:
        return self.issuer.format(province=province, PROVINCE=province.upper())


_TEXT_FIELDS = {
    "issuer": ("province", "PROVINCE"), "report_place_date": ("province", "day", "month", "year"),
    "form_place_date": ("year",),
}
_TEXT_LISTS = ("report_signature", "form_recipients", "form_signature")


@dataclass(frozen=True)
class FormDefinition:
    edition: str
    title: str
    subtitle: str
    period: str
    years: tuple[int, ...]
    year_label: str
    metrics: tuple[Metric, ...]
    rules: tuple[Rule, ...]
    roles: Roles
    shares: tuple[Share, ...]
    texts: Texts
    number_label: str = "TT"
    year_header: str = "Năm"
    province_line: tuple[str, ...] = ()
    unit_line_prefixes: tuple[str, ...] = ()
    total_labels: tuple[str, ...] = ()
    table_end: tuple[str, ...] = ()
    source: str = ""
    metric_keys: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metric_keys", tuple(m.key for m in self.metrics))

    def metric(self, key: str) -> Metric:
        for metric in self.metrics:
            if metric.key == key:
                return metric
        raise KeyError(key)

    def rule(self, code: str) -> Rule:
        for rule in self.rules:
            if rule.code == code:
                return rule
        raise KeyError(code)

    @property
    def admitted_metrics(self) -> tuple[str, ...]:
        """The metrics that count people admitted to the Party (role `admitted`)."""
        return self.roles.admitted

    def explanation(self, rule: Rule) -> str:
        """The rule's explanation for the unit, its fields filled in."""
        return rule.explanation.format(percent=format_percent(rule.max_ratio, 0), min=rule.min,
                                       department=self.texts.department)


def _phrases(values: object, where: str) -> tuple[str, ...]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise FormDefinitionError(f"{where}: cần một danh sách chuỗi")
    return tuple(fold(v) for v in values)


def _check_format(text: str, allowed: tuple[str, ...], where: str) -> None:
    """`text` must be a format string using only `allowed` fields."""
    import string

    try:
        used = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        raise FormDefinitionError(f"{where}: {exc}") from exc
    unknown = used - set(allowed)
    if unknown:
        raise FormDefinitionError(f"{where}: trường không được dùng {sorted(unknown)} (chỉ được dùng: {list(allowed)})")


def _roles(data: object, keys: set[str]) -> Roles:
    if not isinstance(data, dict):
        raise FormDefinitionError("thiếu bảng [roles] (vai trò các chỉ tiêu: members, outstanding, quota, admitted)")
    unknown_roles = set(data) - set(ROLE_NAMES)
    if unknown_roles:
        raise FormDefinitionError(f"[roles]: vai trò không có {sorted(unknown_roles)} (chỉ có: {list(ROLE_NAMES)})")
    for name in ROLE_NAMES:
        if name not in data:
            raise FormDefinitionError(f"[roles]: thiếu vai trò {name!r}")
    for name in ("members", "outstanding", "quota"):
        if not isinstance(data[name], str):
            raise FormDefinitionError(f"roles.{name}: cần đúng một mã chỉ tiêu (key của một [[metrics]])")
        if data[name] not in keys:
            raise FormDefinitionError(f"roles.{name}: không có chỉ tiêu nào mang mã {data[name]!r}")
    admitted = data["admitted"]
    if not isinstance(admitted, list) or not admitted or not all(isinstance(k, str) for k in admitted):
        raise FormDefinitionError("roles.admitted: cần một danh sách (không rỗng) các mã chỉ tiêu")
    unknown = [k for k in admitted if k not in keys]
    if unknown:
        raise FormDefinitionError(f"roles.admitted: không có chỉ tiêu nào mang mã {unknown}")
    return Roles(members=data["members"], outstanding=data["outstanding"], quota=data["quota"],
                 admitted=tuple(admitted))


def _shares(data: object, keys: set[str], roles: Roles) -> tuple[Share, ...]:
    if not isinstance(data, list) or not data:
        raise FormDefinitionError("thiếu danh sách [[shares]] (các tỉ trọng in trong báo cáo)")
    resolved = {"members": (roles.members,), "outstanding": (roles.outstanding,), "quota": (roles.quota,),
                "admitted": roles.admitted}
    ambiguous = set(resolved) & keys
    shares: list[Share] = []
    for entry in data:
        key = entry.get("key", "") if isinstance(entry, dict) else ""
        if not key or not isinstance(entry.get("label"), str) or not entry["label"].strip():
            raise FormDefinitionError(f"tỉ trọng {key or '?'}: cần có key và label")
        if any(s.key == key for s in shares):
            raise FormDefinitionError(f"tỉ trọng {key}: key bị dùng hai lần")
        sides = []
        for side in ("numerator", "denominator"):
            terms = entry.get(side)
            if not isinstance(terms, list) or not terms or not all(isinstance(t, str) for t in terms):
                raise FormDefinitionError(f"tỉ trọng {key}.{side}: cần một danh sách (không rỗng) các mã chỉ tiêu "
                                          "hoặc vai trò")
            metrics: list[str] = []
            for term in terms:
                if term in ambiguous:
                    raise FormDefinitionError(f"tỉ trọng {key}.{side}: {term!r} vừa là mã chỉ tiêu vừa là tên vai trò")
                if term in resolved:
                    metrics.extend(resolved[term])
                elif term in keys:
                    metrics.append(term)
                else:
                    raise FormDefinitionError(f"tỉ trọng {key}.{side}: không có chỉ tiêu hay vai trò nào tên {term!r}")
            sides.append(tuple(metrics))
        shares.append(Share(key=key, label=entry["label"], numerator=sides[0], denominator=sides[1]))
    return tuple(shares)


def _texts(data: object) -> Texts:
    if not isinstance(data, dict):
        raise FormDefinitionError("thiếu bảng [texts] (tiêu đề, phần ký của báo cáo)")
    names = [f.name for f in dataclasses.fields(Texts)]
    unknown = set(data) - set(names)
    if unknown:
        raise FormDefinitionError(f"[texts]: mục không có {sorted(unknown)}")
    values: dict[str, object] = {}
    for name in names:
        if name not in data:
            raise FormDefinitionError(f"[texts]: thiếu mục {name!r}")
        value = data[name]
        if name in _TEXT_LISTS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise FormDefinitionError(f"texts.{name}: cần một danh sách chuỗi")
            values[name] = tuple(value)
        else:
            if not isinstance(value, str):
                raise FormDefinitionError(f"texts.{name}: cần một chuỗi")
            _check_format(value, _TEXT_FIELDS.get(name, ()), f"texts.{name}")
            values[name] = value
    return Texts(**values)  # type: ignore[arg-type]


def load_form(path: Path | str = DEFAULT_FORM) -> FormDefinition:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise FormDefinitionError(f"Không đọc được tệp định nghĩa biểu mẫu {path}: {exc}") from exc
    try:
        metrics = tuple(
            Metric(
                key=m["key"],
                label=m["label"],
                match=tuple(_phrases(alt, f"metric {m['key']} match") for alt in m["match"]),
                exclude=_phrases(m.get("exclude", []), f"metric {m['key']} exclude"),
                group=m.get("group", ""),
                sublabel=m.get("sublabel", ""),
            )
            for m in data["metrics"]
        )
        keys = {m.key for m in metrics}
        twice = sorted({m.key for m in metrics if sum(1 for n in metrics if n.key == m.key) > 1})
        if twice:
            raise FormDefinitionError(f"mã chỉ tiêu bị dùng hai lần: {twice}")
        rules: list[Rule] = []
        for r in data.get("rules", []):
            rule = Rule(
                code=r["code"],
                kind=r["kind"],
                severity=r["severity"],
                message=r["message"],
                left=tuple(r.get("left", ())),
                right=tuple(r.get("right", ())),
                cell=r.get("cell", ""),
                metric=r.get("metric", ""),
                min=int(r.get("min", 0)),
                max_ratio=float(r.get("max_ratio", 0.0)),
                explanation=r.get("explanation", ""),
            )
            if rule.kind not in RULE_KINDS:
                raise FormDefinitionError(f"quy tắc {rule.code}: loại kiểm tra {rule.kind!r} không có")
            if rule.severity not in ("error", "warning", "info"):
                raise FormDefinitionError(f"quy tắc {rule.code}: mức độ {rule.severity!r} không có")
            unknown = {*rule.left, *rule.right, *([rule.cell] if rule.cell else []),
                       *([rule.metric] if rule.metric else [])} - keys
            if unknown:
                raise FormDefinitionError(f"quy tắc {rule.code}: không có chỉ tiêu nào mang mã {sorted(unknown)}")
            if not isinstance(rule.explanation, str) or not rule.explanation.strip():
                raise FormDefinitionError(f"quy tắc {rule.code}: thiếu explanation (giải thích cho đơn vị "
                                          f"điều được kiểm tra và cách sửa, in ở trang hướng dẫn)")
            _check_format(rule.explanation, EXPLANATION_FIELDS, f"quy tắc {rule.code}, explanation")
            if any(r.code == rule.code for r in rules):
                raise FormDefinitionError(f"quy tắc {rule.code}: mã quy tắc bị dùng hai lần")
            rules.append(rule)
        roles = _roles(data.get("roles"), keys)
        shares = _shares(data.get("shares"), keys, roles)
        texts = _texts(data.get("texts"))
        header = data.get("header", {})
        return FormDefinition(
            edition=data["edition"],
            title=data["title"],
            subtitle=data["subtitle"],
            period=data["period"],
            years=tuple(int(y) for y in data["years"]),
            year_label=data.get("year_label", "Năm {year}"),
            metrics=metrics,
            rules=tuple(rules),
            roles=roles,
            shares=shares,
            texts=texts,
            number_label=header.get("number", "TT"),
            year_header=header.get("year", "Năm"),
            province_line=_phrases(header.get("province_line", []), "header.province_line"),
            unit_line_prefixes=_phrases(header.get("unit_line_prefixes", []), "header.unit_line_prefixes"),
            total_labels=_phrases(header.get("total_labels", []), "header.total_labels"),
            table_end=_phrases(header.get("table_end", []), "header.table_end"),
            source=str(path),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, FormDefinitionError):
            raise FormDefinitionError(f"Tệp định nghĩa biểu mẫu {path}: {exc}") from exc
        raise FormDefinitionError(f"Tệp định nghĩa biểu mẫu {path}: thiếu hoặc sai mục {exc}") from exc

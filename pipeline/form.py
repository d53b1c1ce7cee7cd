"""The form definition: loaded from a TOML file under `schemas/`, plain data from then on."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.textnorm import fold

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"
DEFAULT_FORM = SCHEMAS_DIR / "phat_trien_dang_2021_2023.toml"

RULE_KINDS = ("min", "not_greater", "max_change", "total_row", "allocation")


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
    severity: str
    message: str
    left: tuple[str, ...] = ()
    right: tuple[str, ...] = ()
    cell: str = ""
    metric: str = ""
    min: int = 0
    max_ratio: float = 0.0


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


def _phrases(values: object, where: str) -> tuple[str, ...]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise FormDefinitionError(f"{where}: expected a list of strings")
    return tuple(fold(v) for v in values)


def load_form(path: Path | str = DEFAULT_FORM) -> FormDefinition:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise FormDefinitionError(f"{path}: {exc}") from exc
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
        rules = []
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
            )
            if rule.kind not in RULE_KINDS:
                raise FormDefinitionError(f"rule {rule.code}: unknown kind {rule.kind!r}")
            if rule.severity not in ("error", "warning", "info"):
                raise FormDefinitionError(f"rule {rule.code}: unknown severity {rule.severity!r}")
            unknown = {*rule.left, *rule.right, *([rule.cell] if rule.cell else []),
                       *([rule.metric] if rule.metric else [])} - keys
            if unknown:
                raise FormDefinitionError(f"rule {rule.code}: unknown metrics {sorted(unknown)}")
            rules.append(rule)
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
            raise
        raise FormDefinitionError(f"{path}: missing or invalid field {exc}") from exc

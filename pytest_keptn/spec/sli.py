"""sli.yaml (§10.1): indicator name -> query, merged project < stage < service."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_keptn.spec._yaml import Fields, read_source


@dataclass(frozen=True)
class SLIConfig:
    """A parsed sli.yaml."""

    indicators: Mapping[str, str] = field(default_factory=dict)
    spec_version: str = ""
    file: str = "sli.yaml"


def sli_from_mapping(doc: Any, *, file: str) -> SLIConfig:
    f = Fields(file)
    if doc is None:
        raise f.error("", "empty sli.yaml")
    top = f.mapping(doc, "(top level)", allow_null=False)
    f.unknown_keys(top, ("spec_version", "indicators"), "")
    if "indicators" not in top:
        raise f.error("indicators", "missing")
    raw = top["indicators"]
    if not isinstance(raw, dict):
        raise f.error(
            "indicators",
            "expected a mapping of indicator name to query, got "
            + ("null" if raw is None else type(raw).__name__),
        )
    indicators: dict[str, str] = {}
    for key, value in raw.items():
        name = f.string(key, "indicators")
        path = f"indicators.{name}"
        if value is None or isinstance(value, list | dict | bool):
            raise f.error(path, "expected a query string")
        indicators[name] = f.string(value, path)
    return SLIConfig(indicators, f.string(top.get("spec_version"), "spec_version"), file)


def load_sli(
    source: str | Path | bytes | Mapping[str, Any], *, file: str | None = None
) -> SLIConfig:
    """Load an sli.yaml from a path, raw bytes or a mapping; SpecError on any mistake."""
    doc, name, _ = read_source(source, file, "sli.yaml")
    return sli_from_mapping(doc, file=name)


def merge_sli(*configs: SLIConfig | None) -> dict[str, str]:
    """Merge key by key; later configs win (project, then stage, then service level)."""
    merged: dict[str, str] = {}
    for config in configs:
        if config is not None:
            merged.update(config.indicators)
    return merged

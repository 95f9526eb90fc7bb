from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_keptn.errors import SpecError
from pytest_keptn.spec import load_shipyard, load_sli, load_slo

from .malformed.cases import cases, huge_file

LOADERS: dict[str, Callable[..., Any]] = {
    "slo": load_slo,
    "sli": load_sli,
    "shipyard": load_shipyard,
}
CASES = cases()


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert {kind for _, kind, _ in CASES} == set(LOADERS)


@pytest.mark.parametrize(("path", "kind", "expected"), CASES, ids=[p.name for p, _, _ in CASES])
def test_malformed_file_gives_one_line_error(path: Path, kind: str, expected: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(SpecError) as info:
            LOADERS[kind](path)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: "), text
    assert expected in text[len(str(path)) + 2 :], text
    assert info.value.file == str(path)
    assert info.value.__cause__ is None or isinstance(info.value.__cause__, SpecError)


def test_alias_bomb_is_refused_fast() -> None:
    bomb = next(p for p, _, _ in CASES if p.name == "slo-alias-bomb.yaml")
    started = time.perf_counter()
    with pytest.raises(SpecError, match="alias"):
        load_slo(bomb)
    assert time.perf_counter() - started < 0.5


def test_huge_file_is_refused(tmp_path: Path) -> None:
    path, kind, expected = huge_file(tmp_path)
    started = time.perf_counter()
    with pytest.raises(SpecError, match=expected) as info:
        LOADERS[kind](path)
    assert str(info.value).startswith(str(path))
    assert time.perf_counter() - started < 0.5


def test_error_names_given_file_name(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("objectives: [null]\n")
    with pytest.raises(SpecError) as info:
        load_slo(path, file="keptn/hardening/carts/slo.yaml")
    assert str(info.value) == "keptn/hardening/carts/slo.yaml: objectives[0]: null objective"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read file"):
        load_slo(tmp_path / "nope.yaml")

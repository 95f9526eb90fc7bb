"""Collection-time checks across the Keptn files and the registered SLI providers.

Each finds a setup mistake before anything is deployed, as one line naming the file, field or
option: a name that would be a path, an objective no provider can answer (a typo, or a
Dynatrace query with only Prometheus to run it), an SLO filter value that cannot be pasted into
its query. The session calls them once, in ``pytest_configure``.
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pytest_keptn.errors import ConfigError, SpecError
from pytest_keptn.spec._yaml import SpecWarning
from pytest_keptn.spec.names import name_problem
from pytest_keptn.spec.slo import SLO

# Our own SLI providers, whose names the check knows without asking them.
BUILTIN_PROVIDERS = ("keptn-sli-prometheus", "keptn-sli-locust")

# Dynatrace SLI provider query shapes (dynatrace-service: ``metricSelector=...&entitySelector=``,
# the older ``builtin:...:merge(...)`` metric expressions, and the ``USQL;``/``SLO;``/``PV2;``/
# ``SECPV2;``/``MV2;`` prefixes).
_DYNATRACE = re.compile(
    r"(?:^|[?&\s])metricSelector=|^\s*(?:USQL|SLO|PV2|SECPV2|MV2);|^\s*(?:builtin|calc|ext):[\w.]+"
)


@contextmanager
def reissued_spec_warnings(config: Any) -> Iterator[None]:
    """Pass the :class:`SpecWarning` s raised while the Keptn files load on to pytest's warning
    system (the warnings summary, ``-W error::...``), each distinct one once."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SpecWarning)
        try:
            yield
        finally:
            seen: set[str] = set()
            for w in caught:
                text = str(w.message)
                if issubclass(w.category, SpecWarning) and text not in seen:
                    seen.add(text)
                    config.issue_config_time_warning(SpecWarning(text), stacklevel=2)
                elif not issubclass(w.category, SpecWarning):
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def check_option_name(value: str | None, option: str) -> None:
    """A service or project name goes into file names: refuse one that is a path."""
    if value and (problem := name_problem(value)):
        raise ConfigError(f"{problem}: {value!r} (it goes into file names)", field=option)


def is_dynatrace_query(query: str) -> bool:
    return bool(_DYNATRACE.search(query))


@dataclass(frozen=True)
class Served:
    """Which SLI names the registered providers answer.

    ``names``: the names plugins declared through ``pytest_keptn_sli_names``; ``undeclared``:
    the plugins that implement ``pytest_keptn_get_sli`` without declaring (they may serve
    anything, so no name can be called unknown).
    """

    names: frozenset[str] = frozenset()
    undeclared: tuple[str, ...] = ()


def served_names(pluginmanager: Any, stage: str, service: str,
                 indicators: Mapping[str, str]) -> Served:
    """Ask the SLI providers which names they serve in ``stage`` (see ``pytest_keptn_sli_names``)."""
    declaring = {id(impl.plugin) for impl in
                 pluginmanager.hook.pytest_keptn_sli_names.get_hookimpls()}
    undeclared = tuple(
        impl.plugin_name for impl in pluginmanager.hook.pytest_keptn_get_sli.get_hookimpls()
        if impl.plugin_name not in BUILTIN_PROVIDERS and id(impl.plugin) not in declaring
    )
    names: set[str] = set()
    for answer in pluginmanager.hook.pytest_keptn_sli_names(
            stage=stage, service=service, indicators=dict(indicators)):
        names.update(str(n) for n in answer or ())
    return Served(frozenset(names), undeclared)


def check_objectives(slo: SLO, stage: str, indicators: Mapping[str, str], served: Served,
                     builtin: tuple[str, ...]) -> None:
    """Every objective's SLI must be one some provider answers.

    ``indicators``: the merged sli.yaml; ``builtin``: names answered without a query (Keptn's
    built-in Prometheus SLIs and Locust's). A name a plugin declared always passes; a
    Dynatrace-style query is refused unless a plugin declared its name.
    """
    if served.undeclared:
        return
    known = set(indicators) | set(builtin) | served.names
    for i, objective in enumerate(slo.objectives):
        name = objective.sli
        field = f"objectives[{i}].sli"
        if name in served.names:
            continue
        query = indicators.get(name)
        if query is not None and is_dynatrace_query(query):
            raise SpecError(
                f"objective {objective.name!r} of stage {stage!r}: SLI {name!r} has a Dynatrace "
                "query; Prometheus is the built-in SLI provider, and a plugin implementing "
                "pytest_keptn_get_sli (declaring the name in pytest_keptn_sli_names) can serve "
                "others",
                file=slo.file, field=field,
            )
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
            hint = (f"; closest known: {', '.join(close)}" if close
                    else "; no known name is close")
            raise SpecError(
                f"objective {objective.name!r} of stage {stage!r}: SLI {name!r} is neither in "
                f"sli.yaml, nor a built-in or Locust SLI, nor declared by a plugin{hint}",
                file=slo.file, field=field,
            )


def filter_problems(slo: SLO, indicators: Mapping[str, str], problem_of: Any,
                    builtin: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """(filter key, why) for each SLO filter value that cannot be pasted into the query of an
    objective of this slo.yaml (its sli.yaml query, or Keptn's built-in one)."""
    for objective in slo.objectives:
        template = indicators.get(objective.sli)
        if template is None and objective.sli not in builtin:
            continue
        for key, value in slo.filter.items():
            problem = problem_of(template, key, value)
            if problem:
                yield key, f"{problem} (in the query of SLI {objective.sli!r})"

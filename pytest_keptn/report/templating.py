"""The report's Jinja2 environment: the templates in ``report/templates`` and the style sheet
``report/report.css``, package data, compiled once per process.

Autoescaping is on for every template: whatever the data holds (an SLI named
``<script>``, a PromQL with quotes) is escaped by Jinja2, never by hand, and nothing but the
markup the templates build themselves is marked safe (a macro's output). Jinja2 comes with the
``[html]`` extra (pytest-html needs it too); the core imports this module's users for their
dataclasses, so Jinja2 is imported only when something is rendered.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2


@functools.cache
def environment() -> jinja2.Environment:
    """The one environment: templates are compiled on first use and kept (no reload check)."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("pytest_keptn.report", "."),
        autoescape=True,
        auto_reload=False,
        undefined=jinja2.StrictUndefined,  # a misspelt field is an error in the tests, not ""
        trim_blocks=True,
        lstrip_blocks=True,
        cache_size=-1,
    )


def render(template: str, **context: Any) -> str:
    """``templates/<template>`` rendered with ``context``."""
    return environment().get_template(f"templates/{template}").render(**context)


def render_macro(template: str, macro: str, *args: Any) -> str:
    """One macro of ``templates/<template>`` (a fragment other modules embed or test)."""
    module = environment().get_template(f"templates/{template}").module
    return str(getattr(module, macro)(*args))

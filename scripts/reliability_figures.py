"""The figures line of docs/reliability.md, counted from a JUnit XML of the fault and security
tests:

    .venv/bin/python -m pytest -p no:cacheprovider tests/faults tests/security \\
        --junitxml=build/faults.xml
    .venv/bin/python scripts/reliability_figures.py build/faults.xml

Every test case is one scenario (a parametrized case counts once per parameter):

* a **fault** is a case of ``tests/faults`` (a signal, a killed or hung process, a locked or
  damaged history, an unwritable report, a second run, 10,000 objectives ...) except the
  malformed import; it is **survived** when the case passed (its assertions are what
  "survived" means: exit status, one-line message, primary serving, no orphans, evaluation
  kept);
* a **bad input** is a case of ``tests/security/test_hostile_input.py``,
  ``test_delivery_inputs.py``, ``test_names_and_weights.py`` or the malformed import; it is
  **refused clearly** when the case passed. The positive controls (valid image references, the
  shell-word table) are not counted;
* a **secret scenario** is a case of ``tests/security/test_secrets.py`` or
  ``test_postgres_secrets.py``; a failed one counts as **leaked** (each greps every artifact);
* an evaluation is **lost** when a case that asserts an evaluation is kept (in the history, the
  events or the report) fails: the fault cases and the damaged-history cases.

A skipped case is listed and counted as neither tried nor passed.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

CONTROLS = ("test_valid_image_references_pass", "test_which_template_word_is_a_shell_script")
BAD_INPUT_FILES = ("test_hostile_input", "test_delivery_inputs", "test_names_and_weights")
SECRET_FILES = ("test_secrets", "test_postgres_secrets")
IMPORT_CASE = "test_import_of_malformed_events"


def kind(classname: str, name: str) -> str | None:
    module = classname.rsplit(".", 1)[-1]
    if name.startswith(CONTROLS):
        return None
    if name.startswith(IMPORT_CASE) or module in BAD_INPUT_FILES:
        return "input"
    if module in SECRET_FILES:
        return "secret"
    if classname.startswith("tests.faults."):
        return "fault"
    return None


def main(path: str) -> None:
    tried = {"fault": 0, "input": 0, "secret": 0}
    passed = dict.fromkeys(tried, 0)
    skipped: list[str] = []
    for case in ET.parse(path).getroot().iter("testcase"):
        which = kind(case.get("classname", ""), case.get("name", ""))
        if which is None:
            continue
        if case.find("skipped") is not None:
            skipped.append(f"{case.get('classname')}::{case.get('name')}")
            continue
        tried[which] += 1
        if case.find("failure") is None and case.find("error") is None:
            passed[which] += 1
    lost = tried["fault"] - passed["fault"]
    print(f"faults tried / survived: {tried['fault']} / {passed['fault']}; bad inputs tried / "
          f"refused clearly: {tried['input']} / {passed['input']}; secrets leaked: "
          f"{tried['secret'] - passed['secret']} (of {tried['secret']} scenarios); evaluations "
          f"lost: {lost if lost == 0 else f'at most {lost} (failed fault cases)'}")
    for name in skipped:
        print(f"skipped: {name}")


if __name__ == "__main__":
    main(sys.argv[1])

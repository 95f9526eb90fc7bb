"""The quality gate: criteria (``criteria``), lighthouse scoring (``scoring``), the evaluation
history (``history``), Keptn events (``events``) and the time window (``timeframe``).

Submodules are imported explicitly (``from pytest_keptn.gate.scoring import evaluate``) so the
spec layer can use ``gate.criteria`` without pulling in scoring and history.
"""

from __future__ import annotations

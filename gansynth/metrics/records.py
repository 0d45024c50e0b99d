"""The typed shape of an evaluation record: what :func:`gansynth.evaluate` returns and ``metrics.jsonl`` holds.

The records stay plain dicts (JSON in, JSON out, and the keys callers already index), typed here so that a reader
and a type checker know every key; ``tests/test_metrics.py`` checks that a real record has exactly these keys.
A metric that cannot be computed is None.
"""

from __future__ import annotations

from typing import TypedDict


class ClassScores(TypedDict):
    """One class's row of ``per_class``."""

    fid: float | None
    precision: float | None
    recall: float | None
    density: float | None
    coverage: float | None
    label_fidelity: float | None
    collapse: bool
    num_generated: int
    num_real: int


# functional form where a key is a Python keyword ("class", "is")
Alarm = TypedDict("Alarm", {"kind": str, "class": str | None, "message": str})  # kind: collapse, memorization, ...
WorstClass = TypedDict("WorstClass", {"class": str | None, "fid": float | None})


MetricsRecord = TypedDict(
    "MetricsRecord",
    {
        "fid": float | None,
        "kid": float | None,
        "is": float | None,
        "precision": float | None,
        "recall": float | None,
        "density": float | None,
        "coverage": float | None,
        "label_fidelity": float | None,
        "memorization": float | None,
        "per_class": dict[str, ClassScores],
        "per_class_fid_mean": float | None,
        "per_class_fid_worst": WorstClass,
        "alarms": list[Alarm],
        "notes": list[str],
        "protocol": dict,  # how it was measured: extractor, weights sha256, counts, reference, versions, checkpoint
    },
)

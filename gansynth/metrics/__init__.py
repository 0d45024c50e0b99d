"""Metrics stage: generated vs real images → FID, KID, IS, precision/recall, density/coverage, per-class FID, label
fidelity, memorization and collapse alarms, each record with the protocol that produced it.

Modules, in pipeline order: ``extractors`` (torch-fidelity feature-extractor registry), ``domain`` (the offline
extractor: a classifier trained on the real images), ``features`` (images → features, real features cached by
content), ``formulas`` (pure math on features), ``score`` (features → record), ``evaluate`` (the verb).
"""

from gansynth.metrics.domain import load_or_train_domain_classifier
from gansynth.metrics.evaluate import evaluate, evaluate_generator, evaluate_sampler
from gansynth.metrics.extractors import EXTRACTORS, extractor_names
from gansynth.metrics.spec import EvaluateSpec

__all__ = [
    "EXTRACTORS",
    "EvaluateSpec",
    "evaluate",
    "evaluate_generator",
    "evaluate_sampler",
    "extractor_names",
    "load_or_train_domain_classifier",
]

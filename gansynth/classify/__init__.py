"""The one image classifier of the pipeline: domain features for metrics, the export confidence filter, the benchmark.

A timm model trained from scratch on uint8 images held on the device; normalisation and augmentation run per batch
on the device (no DataLoader), and device, precision and compile all come from a :class:`~gansynth.runtime.Runtime`.

Modules: ``config`` (ClassifierConfig, presets), ``network`` (the timm model and its input), ``training`` (the loop),
``model`` (Classifier, train_classifier, splits and scores).
"""

from gansynth.classify.config import CLASSIFIER_PRESETS, ClassifierConfig, classifier_preset
from gansynth.classify.model import Classifier, evaluate_predictions, stratified_split, train_classifier
from gansynth.classify.network import build_classifier, check_model_name

__all__ = [
    "CLASSIFIER_PRESETS",
    "Classifier",
    "ClassifierConfig",
    "build_classifier",
    "check_model_name",
    "classifier_preset",
    "evaluate_predictions",
    "stratified_split",
    "train_classifier",
]

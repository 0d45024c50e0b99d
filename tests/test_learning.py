"""Learning test: `gansynth fit digits` with no other option learns every class, without copying the training set."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from gansynth.data.builtin import digits_raw
from gansynth.sampler import load_sampler

SAMPLES_PER_CLASS = 100
pytestmark = pytest.mark.slow  # the full 120-kimg digits fit: ~2.5 min alone on 2 cores (run with -m slow)


def to_8x8(images: torch.Tensor) -> np.ndarray:
    """uint8 [N, 1, 16, 16] → [N, 64] in [0, 1], the digits' native 8×8 grid."""
    return F.adaptive_avg_pool2d(images.float(), 8).reshape(len(images), -1).numpy() / 255.0


def test_a_real_trained_classifier_recognizes_every_generated_class(digits_run):
    raw, labels = digits_raw()
    classifier = LogisticRegression(max_iter=3000).fit(raw.reshape(len(raw), -1) / 255.0, labels)
    sampler = load_sampler(digits_run)
    accuracy = {}
    for c in range(10):
        images = sampler.generate(c, SAMPLES_PER_CLASS, seed=10_000)
        accuracy[c] = float((classifier.predict(to_8x8(images)) == c).mean())
    assert min(accuracy.values()) >= 0.9, accuracy


def test_samples_are_diverse_and_not_copies(digits_run):
    raw, labels = digits_raw()
    real = torch.from_numpy(raw.reshape(len(raw), -1)).float()
    sampler = load_sampler(digits_run)
    for c in range(10):
        fake = torch.from_numpy(to_8x8(sampler.generate(c, SAMPLES_PER_CLASS, seed=20_000)) * 255.0)
        real_c = real[torch.from_numpy(labels == c)]
        # diversity: spread across seeds is a real fraction of the real class's spread (a collapsed class is ~0)
        assert fake.std(0).mean() > 0.25 * real_c.std(0).mean(), c
        # not copies: nearest training image is, for most samples, farther than a near-duplicate would be
        fake_to_real = torch.cdist(fake, real).min(dim=1).values
        real_to_real = torch.cdist(real_c, real_c).fill_diagonal_(float("inf")).min(dim=1).values
        assert (fake_to_real < 0.25 * real_to_real.median()).float().mean() < 0.05, c


def test_evaluate_ranks_the_trained_generator_above_an_untrained_one(digits_run, tmp_path):
    """The domain metrics see what training did: FID, precision, recall and label fidelity all improve."""
    import dataclasses

    from gansynth.checkpoint import read_config
    from gansynth.config import Config
    from gansynth.data import load_dataset
    from gansynth.metrics import evaluate_sampler
    from gansynth.nn import build_networks

    real = load_dataset("digits")
    trained = load_sampler(digits_run)
    torch.manual_seed(0)
    config = Config.from_dict(read_config(digits_run))
    fresh, _ = build_networks(config.model, trained.resolution, trained.channels, trained.num_classes)
    untrained = dataclasses.replace(trained, generator=fresh.eval(), kimg=0.0, checkpoint_sha256="untrained")
    scores = {
        name: evaluate_sampler(sampler, real, num_samples=1000, feature_extractor="domain")
        for name, sampler in (("trained", trained), ("untrained", untrained))
    }
    good, bad = scores["trained"], scores["untrained"]
    assert good["fid"] < bad["fid"] / 5, (good["fid"], bad["fid"])
    for key in ("precision", "recall", "label_fidelity"):
        assert good[key] > bad[key], (key, good[key], bad[key])
    assert good["label_fidelity"] > 0.9


def test_min_confidence_export_with_the_runs_own_domain_classifier(digits_run, tmp_path):
    """--min-confidence without a stand-in scorer: the domain classifier is trained on the run's data and filters."""
    import csv
    import json

    from gansynth.exporter import export

    result = export(digits_run, tmp_path / "out", per_class=20, min_confidence=0.9, progress=False, workers=0)
    assert set(result.counts.values()) == {20} and all(0 < rate <= 1 for rate in result.acceptance.values())
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    scorer = manifest["filter"]["scorer"]
    assert scorer["name"] == "domain" and scorer["heldout_accuracy"] > 0.9 and scorer["matches_training_data"]
    with open(tmp_path / "out" / "images.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 200 and min(float(r["confidence"]) for r in rows) >= 0.9

"""mixup: the config option, the mixed batch and targets, the training loop using them, and the benchmark arm."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import make_folder

from gansynth.benchmark import NON_GENERATIVE, BenchmarkSpec, benchmark
from gansynth.benchmark.record import best_non_generative
from gansynth.benchmark.select import LEGACY
from gansynth.classify import ClassifierConfig, train_classifier
from gansynth.classify.mixup import MIXUP_ALPHA, Mixup, mix_batch, mixup_loss
from gansynth.errors import ConfigError
from gansynth.mixing import Mixing, mixed_loss

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("alpha", [-0.2, float("nan"), float("inf"), "0.2", True])
def test_bad_mixup_alpha_is_a_config_error(alpha):
    with pytest.raises(ConfigError) as info:
        ClassifierConfig(mixup_alpha=alpha)
    assert "mixup_alpha" in info.value.message
    assert ClassifierConfig(mixup_alpha=MIXUP_ALPHA).mixup_alpha == 0.2  # the benchmark arm's value is valid


def test_mixed_batch_and_loss_are_the_convex_combination_of_pairs():
    """Images λ·x + (1−λ)·x[perm]; the loss equals cross-entropy against the mixed, label-smoothed one-hot targets."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 4, 4, generator=gen) * 2 - 1
    perm = torch.tensor([3, 0, 5, 1, 2, 4])
    lam, smoothing, k = 0.7, 0.1, 4
    mixed = mix_batch(x, lam, perm)
    for i in range(6):
        assert torch.allclose(mixed[i], lam * x[i] + (1 - lam) * x[perm[i]])
    targets = torch.tensor([0, 1, 2, 3, 0, 1])
    logits = torch.randn(6, k, generator=gen)
    one_hot = F.one_hot(targets, k).float() * (1 - smoothing) + smoothing / k  # smoothed targets
    soft = lam * one_hot + (1 - lam) * one_hot[perm]
    expected = -(soft * logits.log_softmax(1)).sum(1).mean()
    plain = lambda i: F.cross_entropy(logits, targets[i], label_smoothing=smoothing)  # noqa: E731
    got = mixup_loss(plain, torch.arange(6), lam, perm)
    assert torch.allclose(got, expected, atol=1e-6)
    synthetic = torch.tensor([False, True, False, False, True, False])
    weighted_ce = lambda i: mixed_loss(logits, targets[i], synthetic[i], Mixing(weight=0.5), smoothing)  # noqa: E731
    weighted = mixup_loss(weighted_ce, torch.arange(6), lam, perm)
    assert weighted.isfinite() and not torch.allclose(weighted, got)  # the synthetic weights reach the mixed loss


def test_mixup_draws_are_seeded_and_off_at_alpha_zero():
    draws = [Mixup(0.2, 3, torch.Generator().manual_seed(3)).draw(8) for _ in range(2)]
    assert draws[0][0] == draws[1][0] and torch.equal(draws[0][1], draws[1][1])
    assert 0 <= draws[0][0] <= 1 and sorted(draws[0][1].tolist()) == list(range(8))
    assert Mixup(0.0, 3, torch.Generator()).draw(8) is None
    lams = [Mixup(0.2, s, torch.Generator()).draw(2)[0] for s in range(200)]
    assert np.mean([min(v, 1 - v) < 0.1 for v in lams]) > 0.5  # Beta(0.2, 0.2) puts most mass near 0 and 1


def test_training_loop_feeds_mixed_batches(monkeypatch):
    """With mixup_alpha > 0 every step mixes its batch; with 0 none does (the default run is unchanged)."""
    import gansynth.classify.training as training

    calls = []
    original = training.mix_batch
    monkeypatch.setattr(training, "mix_batch", lambda *a: calls.append(a[1]) or original(*a))
    images = torch.randint(0, 255, (32, 1, 16, 16), dtype=torch.uint8)
    labels = torch.arange(32) % 2
    config = ClassifierConfig(model="test_efficientnet", batch_size=16, steps=4, flip=False)
    train_classifier(images, labels, 2, config)
    assert calls == []
    train_classifier(images, labels, 2, ClassifierConfig(**{**config.__dict__, "mixup_alpha": 0.4}))
    assert len(calls) == 4 and all(0 <= lam <= 1 for lam in calls) and len(set(calls)) == 4


def test_mixup_is_opt_in_and_a_non_generative_baseline():
    assert "mixup" in NON_GENERATIVE
    assert "mixup" not in BenchmarkSpec().arms_for(has_synthetic=True)
    assert BenchmarkSpec(arms="real,mixup").arms_for(has_synthetic=False) == ["real", "mixup"]
    means = (("real", 0.5), ("mixup", 0.7), ("rebalanced", 0.6))
    arms = {name: {"balanced_accuracy": {"mean": m}} for name, m in means}
    assert best_non_generative(arms) == "mixup"


def test_mixup_arm_runs_end_to_end_and_is_compared(tmp_path):
    real = make_folder(tmp_path / "real", dict.fromkeys(["cat", "dog", "fox"], 12), size=16, mode="L")
    synthetic = make_folder(tmp_path / "synthetic", dict.fromkeys(["cat", "dog", "fox"], 6), size=16, mode="L", seed=1)
    result = benchmark(
        real, synthetic=synthetic, arms="real,real+synthetic,mixup", seeds=2, epochs=1, batch_size=16, min_steps=8,
        progress=False, budget="fixed", mixings=[LEGACY], out=tmp_path / "report",
    )  # fmt: skip
    record = result.record
    assert list(record["arms"]) == ["real", "real+synthetic", "mixup"]
    assert record["protocol"]["mixup_alpha"] == {"mixup": MIXUP_ALPHA}
    assert record["best_non_generative"] in ("real", "mixup")
    pairs = [(c["arm"], c["baseline"]) for c in record["comparisons"]]
    assert pairs[0] == ("real+synthetic", record["best_non_generative"])
    assert ("mixup", "real") in pairs and ("real+synthetic", "mixup") in pairs

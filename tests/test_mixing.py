"""Mixing synthetic images into classifier training: spec, loss, batches, schedules, balanced softmax."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gansynth.classify import (
    ClassifierConfig,
    build_classifier,
    evaluate_predictions,
    stratified_split,
    train_classifier,
)
from gansynth.errors import ConfigError
from gansynth.mixing import (
    NO_SYNTHETIC,
    MixedDataset,
    Mixing,
    log_prior,
    mixed_batches,
    mixed_loss,
    parse_mixing,
    synthetic_per_batch,
)

TINY = {"model": "test_efficientnet", "batch_size": 32, "flip": False}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    ("key", "value"),
    [("weight", -0.1), ("label_smoothing", 1.0), ("max_share", 1.5), ("start", 1.0), ("schedule", "late")],
)
def test_mixing_rejects_out_of_range_settings(key, value):
    with pytest.raises(ConfigError, match=key):
        Mixing(**{key: value})


def test_zero_weight_means_no_synthetic():
    assert not NO_SYNTHETIC.uses_synthetic and Mixing().uses_synthetic
    assert NO_SYNTHETIC.describe() == "no synthetic" and "deferred@0.5" in Mixing(schedule="deferred").describe()
    head = Mixing(schedule="head", balanced_softmax=True)
    assert eval(head.python()) == head


def test_mixed_loss_weights_and_smooths_synthetic_samples():
    torch.manual_seed(0)
    logits, targets = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    synthetic = torch.tensor([False, False, False, True, True, True])
    plain = F.cross_entropy(logits, targets, label_smoothing=0.1)
    assert torch.allclose(mixed_loss(logits, targets, label_smoothing=0.1), plain)
    real_only = F.cross_entropy(logits[:3], targets[:3], label_smoothing=0.1)
    assert torch.allclose(mixed_loss(logits, targets, synthetic, Mixing(weight=0.0), 0.1), real_only)
    per_sample = torch.cat([
        F.cross_entropy(logits[:3], targets[:3], label_smoothing=0.1, reduction="none"),
        F.cross_entropy(logits[3:], targets[3:], label_smoothing=0.3, reduction="none"),
    ])  # fmt: skip
    weights = torch.tensor([1, 1, 1, 0.5, 0.5, 0.5])
    expected = (weights * per_sample).sum() / weights.sum()
    mixing = Mixing(weight=0.5, label_smoothing=0.3)
    assert torch.allclose(mixed_loss(logits, targets, synthetic, mixing, 0.1), expected)


def test_balanced_softmax_loss_adds_the_log_prior():
    prior = log_prior([90, 10], [0, 40], weight=0.25)  # real + 0.25 × synthetic = [90, 20]
    assert torch.allclose(prior.exp(), torch.tensor([90 / 110, 20 / 110]))
    logits, targets = torch.tensor([[2.0, 1.0]]), torch.tensor([1])
    assert torch.allclose(mixed_loss(logits, targets, prior=prior), F.cross_entropy(logits + prior, targets))
    assert torch.isfinite(log_prior([5, 0])).all()  # an empty class does not give -inf


def test_batches_respect_share_and_schedule():
    generator = torch.Generator().manual_seed(0)
    mixing = Mixing(max_share=0.25, schedule="deferred", start=0.5)
    batches = mixed_batches(100, 300, 16, 10, mixing, generator)
    assert batches.shape == (10, 16)
    synthetic = (batches >= 100).sum(dim=1)
    assert synthetic[:5].tolist() == [0] * 5  # real only before start × steps
    assert synthetic[5:].tolist() == [4] * 5  # then capped at 25% of a batch (the sets' ratio would be 75%)
    assert synthetic_per_batch(Mixing(max_share=0.9), 100, 20, 12) == 2  # below the cap: the sets' proportion
    real = batches[batches < 100]
    assert torch.bincount(real, minlength=100).max() - torch.bincount(real, minlength=100).min() <= 1  # even use


def test_balanced_batches_draw_every_class_equally_often():
    """90/10 real and 5/45 synthetic images: with balanced_batches each part of a batch is half class 0, half 1."""
    real_labels = (torch.arange(100) >= 90).long()  # 90 of class 0, 10 of class 1
    synthetic_labels = (torch.arange(50) >= 5).long()  # 5 of class 0, 45 of class 1
    mixing = Mixing(max_share=0.25, balanced_batches=True)
    generator = torch.Generator().manual_seed(0)
    batches = mixed_batches(100, 50, 32, 200, mixing, generator, (real_labels, synthetic_labels))
    assert batches.shape == (200, 32) and ((batches >= 100).sum(dim=1) == 8).all()  # the share is kept
    real, synthetic = batches[batches < 100], batches[batches >= 100] - 100
    assert abs(real_labels[real].float().mean() - 0.5) < 0.03  # 10% of the real images, half of the draws
    assert abs(synthetic_labels[synthetic].float().mean() - 0.5) < 0.03
    plain = mixed_batches(100, 50, 32, 200, Mixing(max_share=0.25), generator)
    assert abs(real_labels[plain[plain < 100]].float().mean() - 0.1) < 0.02  # without it: the sets' proportions
    with pytest.raises(ConfigError, match="labels"):
        mixed_batches(100, 50, 32, 2, mixing, generator)


def test_balanced_batches_without_synthetic_images_train_as_the_rebalanced_arm():
    torch.manual_seed(0)
    images = torch.randint(0, 255, (40, 1, 16, 16), dtype=torch.uint8)
    labels = (torch.arange(40) >= 34).long()  # 34 / 6
    rebalanced = train_classifier(images, labels, 2, ClassifierConfig(**TINY, steps=4, seed=1, balanced=True))
    mixing = Mixing(weight=0.0, balanced_batches=True)
    mixed = train_classifier(images, labels, 2, ClassifierConfig(**TINY, steps=4, seed=1), mixing=mixing)
    plain = train_classifier(images, labels, 2, ClassifierConfig(**TINY, steps=4, seed=1))
    synthetic = torch.arange(40) >= 30
    with pytest.raises(ConfigError, match="balanced_batches=True"):  # not silently ignored when batches are mixed
        train_classifier(images, labels, 2, ClassifierConfig(**TINY, steps=4, balanced=True), synthetic=synthetic,
                         mixing=Mixing())  # fmt: skip
    weights = [list(c.model.state_dict().values()) for c in (rebalanced, mixed, plain)]
    assert all(torch.equal(a, b) for a, b in zip(weights[0], weights[1]))
    assert not all(torch.equal(a, b) for a, b in zip(weights[0], weights[2]))  # balanced draws ≠ plain permutations


def test_parse_mixing_reads_every_key():
    mixing = parse_mixing("weight=0.5,balanced_batches=yes,balanced_softmax=off,schedule=deferred")
    assert mixing == Mixing(weight=0.5, balanced_batches=True, schedule="deferred")
    assert mixing.describe().endswith("deferred@0.5 +balanced") and eval(mixing.python()) == mixing
    assert parse_mixing("weight=0,balanced_batches=true").describe() == "no synthetic +balanced"
    with pytest.raises(ConfigError, match="balanced_batches"):
        parse_mixing("balanced_batches=maybe")
    with pytest.raises(ConfigError, match="balanced_batches"):
        Mixing(balanced_batches=1)
    with pytest.raises(ConfigError, match="both correct for the class prior"):
        parse_mixing("balanced_softmax=true,balanced_batches=true")


def test_mixed_dataset_feeds_a_dataloader():
    from torch.utils.data import DataLoader, TensorDataset

    real = TensorDataset(torch.zeros(10, 1, 4, 4), torch.arange(10) % 2)
    fake = TensorDataset(torch.ones(30, 1, 4, 4), torch.ones(30, dtype=torch.long))
    data = MixedDataset(real, fake, (torch.arange(10) % 2).tolist(), [1] * 30)
    mixing = Mixing(max_share=0.5)
    loader = DataLoader(data, batch_sampler=data.batch_sampler(mixing, batch_size=8, steps=3, seed=1))
    batches = list(loader)
    assert len(batches) == 3
    for x, _, synthetic in batches:
        assert x.shape == (8, 1, 4, 4) and int(synthetic.sum()) == 4
        assert torch.equal(x[synthetic].flatten(1).mean(1), torch.ones(4))  # synthetic flags match the images
    assert torch.allclose(data.log_prior(mixing).exp(), torch.tensor([5 / 19, 14 / 19]))  # [5, 5 + 0.3 × 30]


def test_head_schedule_trains_only_the_classifier_head():
    """schedule='head' from step 0: every backbone weight keeps its seeded initial value; the head moves."""
    torch.manual_seed(0)
    images = torch.randint(0, 255, (40, 1, 16, 16), dtype=torch.uint8)
    labels, synthetic = torch.arange(40) % 2, torch.arange(40) >= 20
    config = ClassifierConfig(**TINY, steps=5, seed=3)
    trained = train_classifier(images, labels, 2, config, synthetic=synthetic, mixing=Mixing(schedule="head", start=0))
    torch.manual_seed(3)
    initial = build_classifier("test_efficientnet", 2, 1, 16).state_dict()
    head = {f"classifier.{k}" for k in trained.model.get_classifier().state_dict()}
    after = trained.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in initial.items() if k not in head)
    assert not all(torch.equal(after[k], initial[k]) for k in head)


def test_balanced_softmax_beats_cross_entropy_on_imbalanced_digits():
    """Digits with 80 … 2 training images per class (ρ = 40): logit adjustment lifts balanced accuracy."""
    from gansynth.benchmark.plan import take_first
    from gansynth.data import load_dataset

    digits = load_dataset("digits")
    train_idx, test_idx = stratified_split(digits.labels, 0.3, seed=0)
    train, test = digits.subset(train_idx), digits.subset(test_idx)
    long_tail = train.subset(take_first(train.labels, [round(80 * 40 ** (-k / 9)) for k in range(10)]))
    gains = []
    for seed in range(2):
        scores = []
        for balanced_softmax in (False, True):
            config = ClassifierConfig(**TINY, steps=150, seed=seed, balanced_softmax=balanced_softmax)
            classifier = train_classifier(long_tail.images, long_tail.labels, 10, config)
            result = evaluate_predictions(test.labels, classifier.predict(test.images), test.class_names)
            scores.append(result["balanced_accuracy"])
        gains.append(scores[1] - scores[0])
    assert min(gains) > 0 and math.fsum(gains) / len(gains) > 0.02, gains

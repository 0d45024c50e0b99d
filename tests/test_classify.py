"""The shared classifier: timm builds with small-image stems, training on digits, save/load, splits and scores."""

from __future__ import annotations

import json

import pytest
import timm
import torch

from gansynth.classify import (
    Classifier,
    ClassifierConfig,
    build_classifier,
    evaluate_predictions,
    stratified_split,
    train_classifier,
)
from gansynth.classify.network import adapt_stem
from gansynth.classify.training import augment_batch, epoch_order
from gansynth.errors import CheckpointError, ConfigError, DataError

# timm's tiny test models train on digits in seconds on 2 CPU cores; older timm releases lack them.
FAST_MODEL = "test_efficientnet"
needs_fast_model = pytest.mark.skipif(not timm.is_model(FAST_MODEL), reason=f"timm has no {FAST_MODEL}")
DIGITS_EPOCHS = 10  # measured: 0.964-0.981 held-out accuracy over seeds 0-2, ~7 s with one CPU thread
DIGITS_MIN_ACCURACY = 0.93


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits():
    from gansynth.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="module")
def digits_split(digits):
    return stratified_split(digits.labels, 0.2, seed=0)


@pytest.fixture(scope="module")
def trained(digits, digits_split) -> Classifier:
    train, _ = digits_split
    config = ClassifierConfig(model=FAST_MODEL, epochs=DIGITS_EPOCHS, flip=False, seed=0)
    return train_classifier(digits.images[train], digits.labels[train], digits.num_classes, config)


def _first_stage_shape(net: torch.nn.Module, x: torch.Tensor) -> tuple[int, ...]:
    """Output shape of the first stage (first timm feature_info entry at reduction >= 4)."""
    stage = next(info["module"] for info in net.feature_info if info["reduction"] >= 4)
    seen: dict[str, tuple[int, ...]] = {}
    handle = net.get_submodule(stage).register_forward_hook(lambda m, i, o: seen.update(shape=tuple(o.shape)))
    net.eval()
    with torch.no_grad():
        net(x)
    handle.remove()
    return seen["shape"]


# --- build_classifier -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "resolution", "in_chans"),
    [("resnet18", 16, 1), ("resnet18d", 32, 3), ("resnet10t", 16, 3), ("resnetv2_18", 16, 1)],
)
def test_build_keeps_full_resolution_in_first_stage(model, resolution, in_chans):
    net = build_classifier(model, num_classes=7, in_chans=in_chans, resolution=resolution)
    x = torch.randn(2, in_chans, resolution, resolution)
    assert net.eval()(x).shape == (2, 7)
    assert _first_stage_shape(net, x)[-2:] == (resolution, resolution)
    first_conv = net.get_submodule(net.pretrained_cfg["first_conv"])
    assert tuple(first_conv.stride) == (1, 1) and tuple(first_conv.kernel_size) == (3, 3)


def test_large_images_keep_the_imagenet_stem():
    net = build_classifier("resnet18", num_classes=3, in_chans=3, resolution=128)
    assert _first_stage_shape(net, torch.randn(1, 3, 128, 128))[-2:] == (32, 32)


@pytest.mark.parametrize("model", ["test_convnext", "test_vit"])
def test_unrecognised_stems_are_left_unchanged(model):
    if not timm.is_model(model):
        pytest.skip(f"timm has no {model}")
    reference = timm.create_model(model, pretrained=False, num_classes=4)
    before = [(n, type(m).__name__) for n, m in reference.named_modules()]
    assert adapt_stem(reference) is False
    assert [(n, type(m).__name__) for n, m in reference.named_modules()] == before
    assert build_classifier(model, num_classes=4, in_chans=3, resolution=32)(torch.randn(2, 3, 32, 32)).shape == (2, 4)


def test_unknown_model_names_a_close_match():
    with pytest.raises(ConfigError) as info:
        build_classifier("resnet81", num_classes=10, in_chans=1, resolution=16)
    assert "resnet81" in info.value.message
    assert "resnet18" in info.value.hint
    with pytest.raises(ConfigError) as info:
        ClassifierConfig(model="resnt18")
    assert "resnet18" in info.value.hint


@pytest.mark.parametrize(
    ("key", "value"),
    [("epochs", 0), ("batch_size", -1), ("lr", 0.0), ("weight_decay", -1e-4), ("label_smoothing", 1.0), ("seed", -1)],
)
def test_config_ranges_name_the_key(key, value):
    with pytest.raises(ConfigError) as info:
        ClassifierConfig(**{key: value})
    assert key in info.value.message


# --- training and inference -----------------------------------------------------------------------------------


@needs_fast_model
def test_digits_reach_high_held_out_accuracy(digits, digits_split, trained):
    _, test = digits_split
    scores = evaluate_predictions(digits.labels[test], trained.predict(digits.images[test]), digits.class_names)
    assert scores["accuracy"] >= DIGITS_MIN_ACCURACY, scores
    assert scores["balanced_accuracy"] >= DIGITS_MIN_ACCURACY - 0.02
    assert min(scores["per_class_recall"].values()) >= 0.75


@needs_fast_model
def test_outputs_shapes_and_other_resolutions(digits, trained):
    images = digits.images[:20]
    proba = trained.predict_proba(images, batch_size=7)
    assert proba.shape == (20, 10) and proba.dtype == torch.float32
    assert torch.allclose(proba.sum(dim=1), torch.ones(20), atol=1e-5)
    assert torch.equal(trained.predict(images), proba.argmax(dim=1))
    features = trained.features(images)
    assert features.shape == (20, trained.feature_dim) and torch.isfinite(features).all()
    # generated images at another resolution are resized to the classifier's 16 px
    upscaled = torch.nn.functional.interpolate(images.float(), size=32, mode="nearest").to(torch.uint8)
    agreement = (trained.predict(upscaled) == trained.predict(images)).float().mean()
    assert agreement >= 0.8
    assert trained.predict_proba(images[:0]).shape == (0, 10)
    multi = trained.multiscale_features(images)
    assert multi.shape[0] == 20 and multi.shape[1] > features.shape[1]
    assert torch.allclose(multi.norm(dim=1), torch.ones(20), atol=1e-5)  # every block unit length, then / sqrt(B)
    assert trained.multiscale_features(images[:0]).shape == (0, multi.shape[1])


@needs_fast_model
def test_inputs_of_the_wrong_kind_are_data_errors(digits, trained):
    with pytest.raises(DataError, match="uint8"):
        trained.predict(digits.images[:4].float())
    with pytest.raises(DataError, match="channels"):
        trained.predict(digits.images[:4].repeat(1, 3, 1, 1))
    config = ClassifierConfig(model=FAST_MODEL, epochs=1)
    with pytest.raises(DataError, match="num_classes"):
        train_classifier(digits.images[:40], digits.labels[:40], 5, config)


@needs_fast_model
def test_same_seed_same_model_other_seed_other_model(digits):
    images, labels = digits.images[:300], digits.labels[:300]

    def fit(seed: int) -> torch.Tensor:
        config = ClassifierConfig(model=FAST_MODEL, epochs=2, batch_size=64, seed=seed)
        return train_classifier(images, labels, 10, config).predict_proba(images[:64])

    torch.manual_seed(123)  # the caller's RNG state must not matter
    first = fit(0)
    torch.manual_seed(456)
    assert torch.equal(first, fit(0))
    assert not torch.equal(first, fit(1))


@needs_fast_model
def test_balanced_training_on_an_imbalanced_subset(digits):
    keep = torch.cat([torch.nonzero(digits.labels == k).flatten()[: 150 if k < 2 else 12] for k in range(4)])
    images, labels = digits.images[keep], digits.labels[keep]
    config = ClassifierConfig(model=FAST_MODEL, epochs=3, batch_size=32, balanced=True, flip=False)
    proba = train_classifier(images, labels, 4, config).predict_proba(images)
    assert proba.shape == (len(keep), 4) and torch.isfinite(proba).all()
    drawn = labels[epoch_order(labels, 4000, True, torch.Generator().manual_seed(0))]
    shares = torch.bincount(drawn, minlength=4).float() / 4000
    assert torch.all((shares - 0.25).abs() < 0.05), shares  # minority classes drawn as often as majority ones
    plain = labels[epoch_order(labels, len(labels), False, torch.Generator().manual_seed(0))]
    assert torch.equal(torch.bincount(plain, minlength=4), torch.bincount(labels, minlength=4))


def test_every_step_sees_a_full_batch_and_the_schedule_reaches_zero():
    from gansynth.classify.training import _lr_factor, training_budget

    config = ClassifierConfig(model=FAST_MODEL, epochs=3, batch_size=64)
    assert training_budget(10, config) == (1, 1)  # a set smaller than a batch: one full (repeated) batch
    assert training_budget(1000, config) == (46, 15)  # 3 × 1000 images in whole batches of 64
    order = epoch_order(torch.arange(10) % 2, 64, False, torch.Generator().manual_seed(0))
    # 64 indices from a set of 10: six whole permutations and four more, so every image is used 6 or 7 times
    assert order.numel() == 64 and sorted(torch.bincount(order, minlength=10).tolist()) == [6] * 6 + [7] * 4
    for schedule in ("cosine", "linear"):
        cfg = ClassifierConfig(model=FAST_MODEL, schedule=schedule, warmup_fraction=0.2)
        factors = [_lr_factor(step, 100, cfg) for step in range(100)]
        assert factors[19] == 1.0 and factors[0] == pytest.approx(0.05) and factors[-1] < 0.03
        assert all(a >= b for a, b in zip(factors[19:], factors[20:]))  # monotone decay after the warm-up
    with pytest.raises(ConfigError, match="schedule"):
        ClassifierConfig(model=FAST_MODEL, schedule="step")


def test_presets_are_valid_configs_and_unknown_names_get_a_suggestion():
    from gansynth.classify import CLASSIFIER_PRESETS, classifier_preset

    assert classifier_preset("cifar-fast").model == "resnet18"
    assert classifier_preset("cifar-fast", epochs=2).epochs == 2
    assert set(CLASSIFIER_PRESETS) == {"cifar-fast"}
    with pytest.raises(ConfigError) as info:
        classifier_preset("cifar-fats")
    assert "cifar-fast" in info.value.hint


def test_augmentation_crops_and_flips_on_the_device():
    ramp = torch.linspace(-0.9, 0.9, 16).expand(64, 1, 16, 16).contiguous()  # brighter to the right
    generator = torch.Generator().manual_seed(0)
    crops = augment_batch(ramp, flip=False, generator=generator)
    assert crops.shape == ramp.shape
    inside = crops[:, 0, 8]  # middle row: padding is -1, image values increase left to right
    increasing = [(row[row > -1].diff() > 0).all().item() for row in inside]
    assert all(increasing)
    assert not all(torch.equal(c, ramp[0]) for c in crops)  # something was shifted
    flipped = augment_batch(ramp, flip=True, generator=torch.Generator().manual_seed(0))
    decreasing = [(row[row > -1].diff() < 0).all().item() for row in flipped[:, 0, 8]]
    assert 10 < sum(decreasing) < 54


# --- save / load ----------------------------------------------------------------------------------------------


@needs_fast_model
def test_save_load_roundtrip(tmp_path, digits, trained):
    trained.save(tmp_path / "domain")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["domain.json", "domain.safetensors"]
    record = json.loads((tmp_path / "domain.json").read_text())
    assert record["config"]["model"] == FAST_MODEL and record["resolution"] == 16 and record["in_chans"] == 1
    loaded = Classifier.load(tmp_path / "domain")
    assert loaded.config == trained.config and loaded.num_classes == 10
    images = digits.images[:50]
    assert torch.equal(loaded.predict_proba(images), trained.predict_proba(images))
    assert torch.equal(loaded.features(images), trained.features(images))


@needs_fast_model
def test_truncated_or_missing_checkpoint_is_a_checkpoint_error(tmp_path, trained):
    trained.save(tmp_path / "clf")
    weights = tmp_path / "clf.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError) as info:
        Classifier.load(tmp_path / "clf")
    assert "truncated" in info.value.message and info.value.hint
    weights.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        Classifier.load(tmp_path / "clf")
    with pytest.raises(CheckpointError, match="missing"):
        Classifier.load(tmp_path / "nothing-here")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="JSON"):
        Classifier.load(tmp_path / "bad")


# --- splits and scores ----------------------------------------------------------------------------------------


def test_stratified_split_keeps_class_proportions():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    train, test = stratified_split(labels, 0.2, seed=3)
    assert torch.bincount(labels[test]).tolist() == [10, 6, 4]
    assert torch.bincount(labels[train]).tolist() == [40, 24, 16]
    assert sorted(torch.cat([train, test]).tolist()) == list(range(100))
    again, _ = stratified_split(labels, 0.2, seed=3)
    other, _ = stratified_split(labels, 0.2, seed=4)
    assert torch.equal(train, again) and not torch.equal(train, other)


def test_stratified_split_names_classes_with_too_few_images():
    labels = torch.tensor([0] * 10 + [1] * 10 + [2] + [3] * 10)
    with pytest.raises(DataError) as info:
        stratified_split(labels, 0.2, seed=0)
    assert "class 2 has 1 image" in info.value.message and info.value.hint
    with pytest.raises(ConfigError, match="test_fraction"):
        stratified_split(torch.tensor([0, 0, 1, 1]), 1.5, seed=0)


def test_evaluate_predictions_matches_hand_computed_scores():
    scores = evaluate_predictions(torch.tensor([0, 0, 1, 1, 2]), torch.tensor([0, 1, 1, 1, 0]), ["a", "b", "c", "d"])
    assert scores["accuracy"] == pytest.approx(0.6)
    assert scores["balanced_accuracy"] == pytest.approx(0.5)  # mean of recalls 0.5, 1.0, 0.0
    assert scores["per_class_recall"] == {"a": 0.5, "b": 1.0, "c": 0.0, "d": None}
    assert scores["confusion"] == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    assert scores["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    json.dumps(scores)  # plain JSON types only

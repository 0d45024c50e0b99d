"""Choices on validation: the classifier budget and the real+synthetic mixing never read the test split."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

import gansynth.benchmark.parallel as parallel_module
import gansynth.benchmark.run as run_module
import gansynth.benchmark.select as select_module
from gansynth.benchmark import benchmark
from gansynth.benchmark.data import held_out_split
from gansynth.benchmark.plan import take_first
from gansynth.benchmark.select import LEGACY, carve_validation, gain_interval, pick, stratified_folds
from gansynth.data import ImageDataset, load_dataset
from gansynth.errors import DataError
from gansynth.mixing import NO_SYNTHETIC, Mixing

PER_CLASS = 40  # real training images per digit; each of the 3 validation folds takes a third of them
FOLDS = 3  # fewer than the default 5: the same mechanism, fewer classifier runs
SMALL = {"epochs": 1, "batch_size": 32, "min_steps": 40, "progress": False, "flip": False, "seeds": 1}
SMALL |= {"validation_folds": FOLDS}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits_parts():
    """``(real training set, held-back real images, real test set)`` from scikit-learn digits."""
    digits = load_dataset("digits")
    train_idx, test_idx = held_out_split(digits, 0.2, seed=0)
    train, test = digits.subset(train_idx), digits.subset(test_idx)
    chosen = take_first(train.labels, [PER_CLASS] * 10)
    rest = torch.tensor(sorted(set(range(len(train))) - set(chosen.tolist())))
    return train.subset(chosen), train.subset(rest[take_first(train.labels[rest], [PER_CLASS] * 10)]), test


def _noise(like: ImageDataset, count: int, seed: int) -> ImageDataset:
    """Uniform-noise images with random labels, in ``like``'s geometry and classes."""
    rng = np.random.default_rng(seed)
    shape = (count, like.channels, like.resolution, like.resolution)
    images = torch.from_numpy(rng.integers(0, 256, shape, dtype=np.uint8))
    labels = torch.from_numpy(rng.integers(0, like.num_classes, count)).long()
    return ImageDataset(
        name="noise", source=f"noise-{seed}", images=images, labels=labels, class_names=list(like.class_names),
        fingerprint=f"noise-{seed}",
    )  # fmt: skip


def _hashes(images: torch.Tensor) -> set[str]:
    return {hashlib.sha256(image.numpy().tobytes()).hexdigest() for image in images}


class _Stop(Exception):
    """Raised where the arms would start training: these tests only need the choices."""


def _choices(monkeypatch, real, test, synthetic, tmp_path, mixings) -> tuple[dict, list[tuple]]:
    """The selection record of a benchmark stopped before its arms train, and for every classifier the choice
    trained, ``(images trained on, images it was asked about)``."""
    seen: list[tuple] = []
    captured: dict = {}
    original_train, original_choose = parallel_module.train_classifier, run_module._choose

    def train(images, labels, *args, **kwargs):
        classifier = original_train(images, labels, *args, **kwargs)
        asked: list[torch.Tensor] = []
        seen.append((images, asked))
        for name in ("predict", "predict_proba", "features"):
            method = getattr(classifier, name)
            setattr(classifier, name, lambda x, *a, _method=method, **k: asked.append(x) or _method(x, *a, **k))
        return classifier

    def choose(*args, **kwargs):
        captured["result"] = original_choose(*args, **kwargs)
        raise _Stop

    monkeypatch.setattr(parallel_module, "train_classifier", train)
    monkeypatch.setattr(run_module, "_choose", choose)
    with pytest.raises(_Stop):
        benchmark(real, test=test, synthetic=synthetic, arms=["real", "real+synthetic"], mixings=mixings,
                  out=tmp_path, **SMALL)  # fmt: skip
    monkeypatch.setattr(parallel_module, "train_classifier", original_train)
    monkeypatch.setattr(run_module, "_choose", original_choose)
    return captured["result"][2], seen


def test_choice_never_reads_the_test_split(digits_parts, tmp_path, monkeypatch):
    """Poisoned test split (noise, random labels): the same budget, scores and choice, and none of it seen; each
    validation classifier is asked only about images it did not train on, and every training image is asked once
    per candidate."""
    real, held_back, test = digits_parts
    mixings = [NO_SYNTHETIC, Mixing()]
    monkeypatch.setattr(select_module, "MAX_DOUBLINGS", 1)  # budget search of two step counts: fast enough
    clean, _ = _choices(monkeypatch, real, test, held_back, tmp_path / "clean", mixings)
    poison = _noise(test, len(test), seed=5)
    poisoned, seen = _choices(monkeypatch, real, poison, held_back, tmp_path / "poisoned", mixings)
    assert poisoned == clean
    assert clean["budget"]["mode"] == "auto" and len(clean["budget"]["history"]) >= 2
    assert [c["label"] for c in clean["mixing"]["candidates"]] == ["no synthetic", Mixing().describe()]
    touched = set().union(*(_hashes(x) for images, asked in seen for x in [images, *asked]))
    assert seen and not touched & _hashes(poison.images)
    validation = clean["validation"]
    assert validation["folds"] == FOLDS and validation["num_validation"] == len(real) == PER_CLASS * 10
    sizes = np.bincount(validation["fold_of"]).tolist()
    assert len(sizes) == FOLDS and max(sizes) - min(sizes) <= 1
    runs = len(clean["budget"]["history"]) + 1  # real-only per budget step, then the one synthetic candidate
    assert len(seen) == FOLDS * runs
    for images, asked in seen:
        (holdout,) = asked
        assert not _hashes(images) & _hashes(holdout)
    per_run = [_hashes(asked[0]) for _, asked in seen[:FOLDS]]
    assert set().union(*per_run) == _hashes(real.images) and sum(map(len, per_run)) == len(_hashes(real.images))
    scores = {c["label"]: c["validation_balanced_accuracy"] for c in clean["mixing"]["candidates"]}
    gain = clean["mixing"]["synthetic_gain"]  # one seed: the per-image outcomes give the candidates' scores back
    assert (gain["with"], gain["without"]) == (Mixing().describe(), "no synthetic")
    assert gain["mean"] == pytest.approx(scores[Mixing().describe()] - scores["no synthetic"], abs=1e-12)
    assert gain["ci95"][0] <= gain["mean"] <= gain["ci95"][1]
    from gansynth.report import _selection_markdown
    from gansynth.terminal import selection_lines

    said = "\n".join(_selection_markdown({"selection": clean}))
    assert f"stratified {FOLDS}-fold cross-validation: each of the {PER_CLASS * 10} training images validated" in said
    lines = "\n".join(selection_lines({"selection": clean}))
    assert f"mixing chosen on {FOLDS}-fold cross-validation: " in lines
    assert f"validation gain of {Mixing().describe()} over no synthetic: {gain['mean'] * 100:+.1f} points" in lines


def test_stratified_folds_validate_every_image_once():
    labels = torch.tensor([0] * 13 + [1] * 7 + [2] * 2)
    parts, fold_of = stratified_folds(labels, 5, seed=1)
    validated = torch.cat([val for _, val in parts])
    assert sorted(validated.tolist()) == list(range(len(labels)))
    sizes = [len(val) for _, val in parts]
    assert max(sizes) - min(sizes) <= 1
    for f, (fit, val) in enumerate(parts):
        assert not set(fit.tolist()) & set(val.tolist()) and len(fit) + len(val) == len(labels)
        assert all(fold_of[i] == f for i in val.tolist())
        for k, n in ((0, 13), (1, 7)):  # each class dealt evenly over the folds
            assert len(val[labels[val] == k]) in (n // 5, n // 5 + 1)
    with pytest.raises(DataError, match="class 1 has 1 image"):
        stratified_folds(torch.tensor([0, 0, 0, 1]), 2, seed=1)


def test_one_fold_is_the_single_split(digits_parts):
    real, _, _ = digits_parts
    single = carve_validation(real, 0.25, folds=1)
    (fit, val) = single.folds[0]
    assert len(val) == single.record["num_validation"] == len(real) // 4
    assert single.record["validation_indices"] == val.tolist() and "fold_of" not in single.record
    assert single.fit_size == len(fit) == len(real) - len(val)


def test_noise_synthetic_set_is_rejected(digits_parts, tmp_path, monkeypatch):
    """Random images with random labels as the synthetic set: the choice keeps synthetic images out."""
    real, _, test = digits_parts
    noise = _noise(real, 2 * len(real), seed=3)
    monkeypatch.setattr(select_module, "MAX_DOUBLINGS", 1)
    mixings = [NO_SYNTHETIC, LEGACY, Mixing(weight=1.0, max_share=0.5)]
    record, _ = _choices(monkeypatch, real, test, noise, tmp_path, mixings)
    scores = {c["label"]: c["validation_balanced_accuracy"] for c in record["mixing"]["candidates"]}
    assert record["mixing"]["chosen_label"] == "no synthetic", scores
    assert not Mixing(**record["mixing"]["chosen"]).uses_synthetic


def test_pick_needs_a_margin_for_synthetic_images():
    candidates = [NO_SYNTHETIC, Mixing(weight=0.0, balanced_softmax=True), Mixing(), LEGACY]
    assert pick(candidates, [0.90, 0.92, 0.924, 0.91]) == candidates[1]  # +0.4 points: not enough
    assert pick(candidates, [0.90, 0.92, 0.93, 0.93]) == candidates[2]  # +1 point; the tie goes to the earlier
    saturated = [1.0, 1.0, 1.0, 1.0]  # balanced accuracy cannot rank them: the log-loss does
    assert pick(candidates, saturated, [0.30, 0.25, 0.20, 0.24]) == candidates[2]  # 20% lower than 0.25
    assert pick(candidates, saturated, [0.30, 0.25, 0.24, 0.23]) == candidates[1]  # 8% lower: not enough
    assert pick(candidates, [1.0, 1.0, 0.99, 1.0], [0.3, 0.3, 0.1, 0.3]) == candidates[0]  # lower accuracy: no


def test_validation_scores_average_over_the_classes_present():
    from sklearn.metrics import balanced_accuracy_score

    from gansynth.benchmark.select import balanced_accuracy, balanced_log_loss

    probabilities = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0], [0.5, 0.5, 0.0]])
    labels = torch.tensor([0, 1, 1, 1])  # class 2 has no validation image
    expected = balanced_accuracy_score(labels.numpy(), probabilities.argmax(1).numpy())
    assert balanced_accuracy(probabilities, labels) == pytest.approx(expected)
    class_one = -(np.log(0.8) + np.log(0.4) + np.log(0.5)) / 3
    assert balanced_log_loss(probabilities, labels) == pytest.approx((-np.log(0.9) + class_one) / 2)


def test_gain_interval_is_paired_class_stratified_and_wide_for_small_classes():
    labels = torch.tensor([0] * 200 + [1] * 200)
    same = torch.rand(400, generator=torch.Generator().manual_seed(0)).round()
    assert gain_interval(same, same, labels) == {"mean": 0.0, "ci95": [0.0, 0.0], "resamples": 2000}  # paired

    def outcomes(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Class 0 (200 images) equal; class 1 (n images): the baseline right on half, the other on all."""
        y = torch.tensor([0] * 200 + [1] * n)
        baseline = torch.cat([torch.ones(200), (torch.arange(n) % 2 == 0).double()])
        return torch.ones(200 + n), baseline, y

    large, small = gain_interval(*outcomes(200)), gain_interval(*outcomes(2))
    for gain in (large, small):
        assert gain["mean"] == pytest.approx(0.25)  # half of one class's recall, over two classes
    assert 0 < large["ci95"][0] < 0.25 < large["ci95"][1]  # 100 fixed images: the gain is real
    assert small["ci95"][0] <= 0.0  # one fixed image out of 2: could be luck
    assert small["ci95"][1] - small["ci95"][0] > 3 * (large["ci95"][1] - large["ci95"][0])


def test_an_uncertain_synthetic_gain_is_noted():
    from gansynth.benchmark.run import _note_uncertain_gain

    gain = {"with": Mixing().describe(), "without": "no synthetic", "mean": 0.011, "ci95": [-0.004, 0.026]}
    notes: list[str] = []
    _note_uncertain_gain({"chosen": Mixing(), "synthetic_gain": gain}, 486, notes)
    assert len(notes) == 1 and "no synthetic: +1.1 points, 95% interval [-0.4, +2.6]" in notes[0]
    assert "bootstrap of the 486 validated images" in notes[0]
    _note_uncertain_gain({"chosen": NO_SYNTHETIC, "synthetic_gain": gain}, 486, notes)  # not chosen: no note
    _note_uncertain_gain({"chosen": Mixing(), "synthetic_gain": {**gain, "ci95": [0.002, 0.02]}}, 486, notes)
    assert len(notes) == 1

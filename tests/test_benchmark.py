"""The downstream benchmark: verdict rule, synthetic plans, splits, useless vs helpful synthetic data, report, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_folder
from PIL import Image

from gansynth.benchmark import HELPS, HURTS, INCONCLUSIVE, NO_HELP, benchmark, paired_comparison
from gansynth.benchmark.data import held_out_split, match_geometry
from gansynth.benchmark.digits import write_image_folder
from gansynth.benchmark.plan import export_count, plan_synthetic, take_first
from gansynth.benchmark.select import LEGACY
from gansynth.benchmark.stats import summarize, verdict_line
from gansynth.cli import main
from gansynth.errors import ConfigError, DataError

# every arm gets max(min_steps, 1 epoch) steps of 32; real+synthetic mixes as before issue 13 (no validation choice)
FAST = {"epochs": 1, "batch_size": 32, "progress": False, "budget": "fixed", "mixings": [LEGACY]}
CHANCE = 0.1  # ten digit classes


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits_folders(tmp_path_factory):
    """Digits split into real ``train`` / ``test`` PNG folders (the test part is never trained on)."""
    from gansynth.data import load_dataset

    digits = load_dataset("digits")
    train, test = held_out_split(digits, 0.2, seed=0)
    root = tmp_path_factory.mktemp("digits")
    return digits.subset(train), write_image_folder(digits.subset(test), root / "test"), root


def _noise_folder(root: Path, per_class: int, classes: list[str], size: int = 16, seed: int = 0) -> Path:
    """Uniform-noise PNGs filed under random class folders: images that carry no label information."""
    rng = np.random.default_rng(seed)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(root / name / f"noise-{i}.png")
    return root


# --- statistics and the verdict rule --------------------------------------------------------------------------


def test_summary_uses_sample_std():
    summary = summarize([0.5, 0.7])
    assert summary["mean"] == pytest.approx(0.6)
    assert summary["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert summary["values"] == [0.5, 0.7]
    assert summarize([0.4])["std"] == 0.0


@pytest.mark.parametrize(
    ("arm", "baseline", "verdict"),
    [
        ([0.90, 0.91, 0.92], [0.80, 0.80, 0.81], HELPS),  # consistent +10 points
        ([0.70, 0.71, 0.69], [0.80, 0.80, 0.81], HURTS),
        ([0.85, 0.75, 0.82], [0.80, 0.80, 0.80], NO_HELP),  # +0.7 ± 5.1: seed noise
        ([0.81, 0.80, 0.99], [0.80, 0.80, 0.80], NO_HELP),  # positive mean, one lucky seed: CI crosses 0
        ([0.95], [0.80], INCONCLUSIVE),
    ],
)
def test_paired_verdict(arm, baseline, verdict):
    result = paired_comparison(arm, baseline)
    assert result["verdict"] == verdict
    assert result["mean"] == pytest.approx(np.mean(np.subtract(arm, baseline)))


def test_verdict_line_reads_in_points():
    result = paired_comparison([0.90, 0.91, 0.92], [0.87, 0.88, 0.89])
    line = verdict_line("real+synthetic", "real", result)
    assert line.startswith("real+synthetic vs real: +3.0 ± 0.0 balanced-accuracy points over 3 seeds (paired")
    assert line.endswith("→ helps")


# --- plans, splits, geometry ----------------------------------------------------------------------------------


def test_synthetic_plans():
    folder = plan_synthetic([50, 10, 5], [30, 30, 30], False, None, None, [])
    assert folder.add == [30, 30, 30] and folder.cas == [30, 30, 30]
    top_up = plan_synthetic([50, 10, 5], None, True, None, None, [0.5])
    assert top_up.add == [0, 40, 45] and top_up.cas == [50, 50, 50] and top_up.sweep == {0.5: [25, 25, 25]}
    balanced = plan_synthetic([50, 49, 48], None, True, None, None, [])
    assert balanced.add == [50, 50, 50]  # a top-up would add 0..2 images: add the largest class instead
    assert plan_synthetic([50, 10, 5], [99] * 3, False, 7, None, []).add == [7, 7, 7]
    assert plan_synthetic([50, 10, 5], [99] * 3, False, None, 20, []).add == [0, 10, 15]
    assert export_count([50, 10, 5], [2.0], None, "max") == 100


def test_synthetic_plan_names_short_classes():
    plan = plan_synthetic([5, 5], [9, 3], False, 4, None, [])
    with pytest.raises(Exception, match="b has 3, needs 4"):
        plan.check_available([9, 3], ["a", "b"])


def test_take_first_keeps_set_order():
    labels = torch.tensor([1, 0, 1, 0, 1])
    assert take_first(labels, [1, 2]).tolist() == [0, 1, 2]


def test_held_out_split_is_stratified_disjoint_and_seeded(digits_folders):
    train, _, _ = digits_folders
    a_train, a_test = held_out_split(train, 0.25, seed=3)
    b_train, b_test = held_out_split(train, 0.25, seed=3)
    assert torch.equal(a_test, b_test) and torch.equal(a_train, b_train)
    assert set(a_train.tolist()).isdisjoint(a_test.tolist())
    assert len(a_train) + len(a_test) == len(train)
    assert (torch.bincount(train.labels[a_test], minlength=10) > 0).all()
    assert (torch.bincount(train.labels[a_train], minlength=10) > 0).all()


def test_held_out_split_names_classes_too_small(tmp_path):
    from gansynth.data import load_dataset

    data = load_dataset(make_folder(tmp_path / "d", {"cat": 4, "dog": 1, "emu": 1}))
    with pytest.raises(DataError, match=r"dog \(1\), emu \(1\)"):
        held_out_split(data, 0.2, seed=0)


def test_digits_lt_heldout_images_are_neither_trained_on_nor_tested(tmp_path, monkeypatch):
    """benchmarks/digits_lt_heldout.py scores a digits-LT generator against the real images outside its training
    set: every non-test image that did not train the GAN, and none that did (but digit 0's, which has no other)."""
    import hashlib

    from gansynth.data import load_dataset

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from digits_lt import prepare
    from digits_lt_heldout import write_heldout

    def images(root: Path) -> dict[str, list[str]]:
        return {d.name: [hashlib.sha256(p.read_bytes()).hexdigest() for p in d.glob("*.png")] for d in root.iterdir()}

    train_dir, test_dir, _ = prepare(tmp_path / "rho10", 10.0)
    train, test, heldout = images(train_dir), images(test_dir), images(write_heldout(tmp_path, 10.0))
    total = load_dataset("digits").counts
    assert sorted(heldout["0"]) == sorted(train["0"])
    for k in range(1, 10):
        assert set(heldout[str(k)]).isdisjoint(train[str(k)] + test[str(k)])
        assert len(heldout[str(k)]) + len(train[str(k)]) + len(test[str(k)]) == total[k]


def test_match_geometry_converts_channels_and_size():
    rgb = torch.full((2, 3, 32, 32), 200, dtype=torch.uint8)
    rgb[:, 0] = 0
    gray = match_geometry(rgb, channels=1, resolution=16)
    assert gray.shape == (2, 1, 16, 16) and gray.dtype == torch.uint8
    assert int(gray[0, 0, 5, 5]) == round(0.587 * 200 + 0.114 * 200)
    assert match_geometry(gray, channels=3, resolution=16).shape == (2, 3, 16, 16)


def test_classifier_step_budget_is_exact(monkeypatch):
    """ClassifierConfig.steps gives every arm the same number of optimizer steps, cutting the last epoch short."""
    import gansynth.classify.training as net
    from gansynth.classify import ClassifierConfig, train_classifier

    calls = []
    original = net.augment_batch
    monkeypatch.setattr(net, "augment_batch", lambda *a: calls.append(1) or original(*a))
    images = torch.randint(0, 255, (40, 1, 16, 16), dtype=torch.uint8)
    config = ClassifierConfig(model="test_efficientnet", batch_size=16, steps=5, flip=False)
    train_classifier(images, torch.arange(40) % 2, 2, config)
    assert len(calls) == 5  # 2 full batches per epoch: 2 + 2 + 1
    with pytest.raises(ConfigError, match="steps"):
        ClassifierConfig(model="test_efficientnet", steps=0)


# --- done-when: useless and helpful synthetic data ------------------------------------------------------------


def test_useless_synthetic_data_does_not_help(digits_folders, tmp_path):
    """Noise images with random labels: no 'helps' verdict, and a classifier trained on them alone is near chance."""
    train, test_dir, _ = digits_folders
    real = write_image_folder(train.subset(take_first(train.labels, [30] * 10)), tmp_path / "real")
    noise = _noise_folder(tmp_path / "noise", 30, train.class_names)
    result = benchmark(
        real, test=test_dir, synthetic=noise, arms=["real", "real+synthetic", "synthetic"], seeds=3,
        min_steps=100, out=tmp_path / "report", flip=False, **FAST,
    )  # fmt: skip
    comparison = result.record["comparisons"][0]
    assert (comparison["arm"], comparison["baseline"]) == ("real+synthetic", "real")
    assert comparison["verdict"] in (NO_HELP, HURTS)
    assert result.verdict.startswith("real+synthetic vs real:") and not result.verdict.endswith(HELPS)
    assert result.arms["real"]["balanced_accuracy"]["mean"] > 0.8  # the real arm learned the digits
    assert abs(result.arms["synthetic"]["balanced_accuracy"]["mean"] - CHANCE) < 0.1


def test_helpful_synthetic_data_helps(digits_folders, tmp_path):
    """Real set of 2 images per class; the 'synthetic' set is held-back real training images: a clear gain."""
    train, test_dir, _ = digits_folders
    few = take_first(train.labels, [2] * 10)
    rest = torch.tensor(sorted(set(range(len(train))) - set(few.tolist())))
    real = write_image_folder(train.subset(few), tmp_path / "real")
    extra = write_image_folder(train.subset(rest[take_first(train.labels[rest], [40] * 10)]), tmp_path / "extra")
    result = benchmark(
        real, test=test_dir, synthetic=extra, arms=["real", "real+synthetic"], seeds=3, min_steps=100,
        out=tmp_path / "report", flip=False, **FAST,
    )  # fmt: skip
    assert result.record["comparisons"][0]["verdict"] == HELPS
    assert result.verdict.endswith("→ helps")
    assert result.record["protocol"]["counts"]["real+synthetic"]["3"] == {"real": 2, "synthetic": 40}


# --- report ---------------------------------------------------------------------------------------------------

ARM_KEYS = {"accuracy", "balanced_accuracy", "macro_f1", "per_class_recall"}
CLASSES = ["cat", "dog", "fox"]


@pytest.fixture(scope="module")
def small_report(tmp_path_factory):
    """All four arms and a ratio sweep on tiny folders; synthetic images are 32 px RGB, the real ones 16 px gray."""
    root = tmp_path_factory.mktemp("small")
    real = make_folder(root / "real", dict.fromkeys(CLASSES, 12), size=16, mode="L")
    make_folder(root / "synthetic" / "images", dict.fromkeys(CLASSES, 10), size=32, seed=1)
    (root / "synthetic" / "manifest.json").write_text(json.dumps({"run": "runs/x", "per_class": 10}))
    result = benchmark(
        real, synthetic=root / "synthetic", seeds=2, ratio_sweep=[1, 0.5], min_steps=10, out=root / "report", **FAST
    )
    return result, root


def test_report_files_and_json_schema(small_report):
    result, root = small_report
    names = {"report.json", "report.md", "arms.png", "per_class_recall.png", "confusion.png", "ratio_sweep.png"}
    assert {p.name for p in (root / "report").iterdir()} == names
    assert {p.name for p in result.files} == names
    record = json.loads((root / "report" / "report.json").read_text())
    assert set(record) == {
        "arms", "comparisons", "verdict", "best_non_generative", "selection", "confusion", "protocol", "recommendation"
    }  # fmt: skip
    arms = ["real", "real+synthetic", "synthetic", "rebalanced", "balanced-softmax"]
    arms += ["real+synthetic@0.5x", "real+synthetic@1x"]
    assert list(record["arms"]) == arms
    from gansynth.benchmark.record import ArmScores, BenchmarkRecord

    assert set(record) == set(BenchmarkRecord.__annotations__)
    assert all(set(row) == set(ArmScores.__annotations__) for row in record["arms"].values())
    for row in record["arms"].values():
        assert set(row) == ARM_KEYS
        for metric in ("accuracy", "balanced_accuracy", "macro_f1"):
            assert set(row[metric]) == {"mean", "std", "values"}
            assert len(row[metric]["values"]) == 2
            assert all(0 <= v <= 1 for v in row[metric]["values"])
            assert 0 <= row[metric]["mean"] <= 1 and row[metric]["std"] >= 0
        assert list(row["per_class_recall"]) == CLASSES
        assert all(set(v) == {"mean", "std"} and 0 <= v["mean"] <= 1 for v in row["per_class_recall"].values())
    protocol = record["protocol"]
    for key in ("model", "epochs", "steps", "seeds", "split", "counts", "synthetic", "gansynth_version", "device"):
        assert key in protocol
    assert protocol["seeds"] == [0, 1]
    assert protocol["synthetic"]["manifest"] == {"run": "runs/x", "per_class": 10}
    assert protocol["synthetic"]["geometry"] == {"channels": 3, "resolution": 32}
    assert any("converted" in note for note in protocol["notes"])
    assert protocol["counts"]["real+synthetic@0.5x"]["dog"] == {"real": 10, "synthetic": 5}
    split = protocol["split"]
    assert split["kind"] == "held-out" and split["seed"] == 0 and len(split["test_indices"]) == 6
    assert all(f.split("/")[0] in CLASSES for f in split["test_files"])
    assert record["verdict"] == record["comparisons"][0]["line"]
    best = record["best_non_generative"]
    assert record["comparisons"][0]["arm"] == "real+synthetic" and record["comparisons"][0]["baseline"] == best
    means = {a: record["arms"][a]["balanced_accuracy"]["mean"] for a in ("real", "rebalanced", "balanced-softmax")}
    assert means[best] == max(means.values())
    assert protocol["balanced_softmax"]["balanced-softmax"] and not protocol["balanced_softmax"]["real"]
    if record["comparisons"][0]["verdict"] == "helps":
        assert "mixed with gansynth.mixing.Mixing(weight=1" in record["recommendation"]
    else:  # a mixing nobody chose that did not help is not recommended
        assert record["recommendation"].startswith("do not add these synthetic images as mixed (as given")


@pytest.mark.parametrize(
    "candidates, verdict, expected",
    [
        ([], "does not help", "do not add these synthetic images as mixed (as given: Mixing(weight=0.3"),
        ([], "hurts", "with balanced softmax: ClassifierConfig(balanced_softmax=True)"),
        ([], "helps", "add the whole synthetic set from gansynth export runs/x --per-class 50"),
        ([{"mixing": "..."}], "does not help", "add the whole synthetic set"),  # chosen on validation: kept
        ([{"mixing": "..."}], "hurts", "(chosen on validation: Mixing(weight=0.3, label_smoothing=0.1, max_share="),
    ],
)
def test_recommendation_follows_the_choice_and_the_test_verdict(candidates, verdict, expected):
    from dataclasses import asdict
    from types import SimpleNamespace

    from gansynth.benchmark.record import recommendation
    from gansynth.mixing import Mixing

    selection = {"mixing": {"chosen": asdict(Mixing(weight=0.3)), "candidates": candidates}}
    comparison = {"arm": "real+synthetic", "baseline": "balanced-softmax", "verdict": verdict, "line": "L"}
    source = {"kind": "run", "run": "runs/x", "exported_per_class": 50}
    text = recommendation(selection, SimpleNamespace(policy="the whole synthetic set"), source, [comparison])
    assert expected in text and text.count("(on the test split: L)") == 1
    if verdict == "hurts":  # the test split's evidence against a mixing is passed on, whoever chose it
        assert text.startswith("do not add") and "they lost to balanced-softmax" in text
        assert text.endswith("ClassifierConfig(balanced_softmax=True)") == bool(candidates)


def test_recommendation_says_how_sure_the_validation_gain_is():
    from dataclasses import asdict
    from types import SimpleNamespace

    from gansynth.benchmark.record import recommendation
    from gansynth.mixing import Mixing

    gain = {"with": "w", "without": "no synthetic +bs", "mean": 0.011, "ci95": [-0.004, 0.026], "resamples": 9}
    selection = {"mixing": {"chosen": asdict(Mixing()), "candidates": [{"mixing": "..."}], "synthetic_gain": gain}}
    comparison = {"arm": "real+synthetic", "baseline": "real", "verdict": "helps", "line": "L"}
    source = {"kind": "run", "run": "runs/x", "exported_per_class": 50}
    text = recommendation(selection, SimpleNamespace(policy="p"), source, [comparison])
    assert text.startswith("add p from gansynth export runs/x --per-class 50, mixed with gansynth.mixing.Mixing(")
    said = "(chosen on validation; validation gain of w over no synthetic +bs: +1.1 points, 95% interval [-0.4, +2.6]; "
    assert said in text


@pytest.mark.parametrize(
    ("chosen", "advice"),
    [
        ({"balanced_batches": True}, "ClassifierConfig(balanced=True)"),
        ({"balanced_softmax": True}, "ClassifierConfig(balanced_softmax=True)"),
        ({}, "train on the real images (on the test split"),
    ],
)
def test_recommendation_without_synthetic_names_how_to_train(chosen, advice):
    from dataclasses import asdict
    from types import SimpleNamespace

    from gansynth.benchmark.record import recommendation
    from gansynth.mixing import Mixing

    selection = {"mixing": {"chosen": asdict(Mixing(weight=0.0, **chosen)), "candidates": [{"mixing": "..."}]}}
    comparison = {"arm": "real+synthetic", "baseline": "rebalanced", "verdict": "does not help", "line": "L"}
    source = {"kind": "run", "run": "runs/x", "exported_per_class": 50}
    text = recommendation(selection, SimpleNamespace(policy="p"), source, [comparison])
    assert text.startswith("do not add these synthetic images (chosen on validation)") and advice in text


def test_report_markdown_ends_in_tables_and_charts(small_report):
    _, root = small_report
    text = (root / "report" / "report.md").read_text()
    best = json.loads((root / "report" / "report.json").read_text())["best_non_generative"]
    assert f"**Verdict:** real+synthetic vs {best}:" in text
    assert text.rstrip().splitlines()[-2:][0] == "" and "## Recommendation" in text.split("\n\n")[-2]
    for chart in ("arms.png", "per_class_recall.png", "confusion.png", "ratio_sweep.png"):
        assert f"]({chart})" in text
    assert "| real+synthetic@1x | 30 + 30 |" in text  # (12 - 2 held out) × 3 real, + 1 × 10 per class


# --- CLI ------------------------------------------------------------------------------------------------------


@pytest.fixture
def folders(tmp_path):
    real = make_folder(tmp_path / "real", dict.fromkeys(CLASSES, 6), size=16, mode="L")
    return tmp_path, real


def _user_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", *argv])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert "error:" in err and "hint:" in err and "Traceback" not in err
    return err


def test_cli_class_sets_differ(folders, capsys):
    tmp_path, real = folders
    synthetic = make_folder(tmp_path / "syn", {"cat": 3, "dog": 3, "emu": 3})
    err = _user_error(capsys, [str(real), "--synthetic", str(synthetic), "--out", str(tmp_path / "r")])
    assert "missing fox" in err and "extra emu" in err


def test_cli_test_overlapping_training_images(folders, capsys):
    tmp_path, real = folders
    test = make_folder(tmp_path / "test", dict.fromkeys(CLASSES, 2), size=16, mode="L", seed=7)
    shutil.copy(real / "dog" / "0003.png", test / "dog" / "renamed.png")
    err = _user_error(capsys, [str(real), "--test", str(test), "--out", str(tmp_path / "r")])
    assert "1 of 7 test images also occur in the training images" in err
    assert "dog/renamed.png = dog/0003.png" in err


def test_cli_zero_seeds(folders, capsys):
    tmp_path, real = folders
    err = _user_error(capsys, [str(real), "--seeds", "0"])
    assert "--seeds" in err


def test_cli_unknown_model(folders, capsys):
    tmp_path, real = folders
    err = _user_error(capsys, [str(real), "--model", "resnet181"])
    assert "resnet181" in err and "did you mean" in err


def test_cli_too_few_images_for_split(tmp_path, capsys):
    real = make_folder(tmp_path / "real", {"cat": 5, "dog": 1})
    err = _user_error(capsys, [str(real), "--out", str(tmp_path / "r")])
    assert "dog (1)" in err and "--test" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--arms", "real,synthetic"], "need synthetic images"),
        (["--arms", "reall"], "did you mean 'real'"),
        (["--ratio-sweep", "0.5,x"], "not a comma-separated list"),
        (["--balance-to", "most"], "'max' or a count"),
        (["--synthetic", "S", "--run", "R"], "both given"),
        (["--mixing", "wieght=0.3"], "did you mean 'weight'"),
        (["--mixing", "schedule=late"], "schedule must be one of"),
        (["--mixing", "weight=-1"], "weight must be >= 0"),
        (["--mixing", "balanced_softmax=1,balanced_batches=1"], "pick one: balanced_softmax=true"),
        (["--budget", "long"], "'auto' or 'fixed'"),
        (["--workers", "two"], "'auto' or a count"),
        (["--workers", "0"], "'auto' or a count"),
    ],
)
def test_cli_option_errors(folders, capsys, extra, message):
    tmp_path, real = folders
    assert message in _user_error(capsys, [str(real), *extra])


@pytest.mark.slow  # every arm through the CLI; the API tests above cover the same arms faster
def test_cli_summary_ends_with_verdict(folders, capsys):
    tmp_path, real = folders
    synthetic = make_folder(tmp_path / "syn", dict.fromkeys(CLASSES, 4), size=16, mode="L", seed=3)
    argv = [str(real), "--synthetic", str(synthetic), "--arms", "real,real+synthetic", "--seeds", "2"]
    argv += ["--budget", "fixed", "--mixing", "weight=1,max_share=1"]
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", *argv, "--epochs", "1", "--out", str(tmp_path / "r"), "--quiet"])
    assert exc.value.code == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[-1].startswith("real+synthetic vs real:") and "over 2 seeds" in lines[-1]
    assert (tmp_path / "r" / "report.json").is_file()


# --- synthetic images from a run, through the export code ------------------------------------------------------


def test_run_is_exported_and_benchmarked(tiny_run, tmp_path):
    pytest.importorskip("gansynth.exporter")
    real = make_folder(tmp_path / "real", {"cat": 8, "dog": 8, "fox": 4}, size=16, mode="L")
    result = benchmark(real, run=tiny_run, seeds=2, min_steps=5, out=tmp_path / "report", export_filter="none", **FAST)
    synthetic = result.record["protocol"]["synthetic"]
    assert synthetic["kind"] == "run" and synthetic["manifest"] is not None
    assert "top-up" in synthetic["policy"]  # 6 : 3 real training images is imbalanced → top up to the largest
    assert result.record["protocol"]["counts"]["real+synthetic"]["fox"] == {"real": 3, "synthetic": 3}
    assert (tmp_path / "report" / "synthetic" / "manifest.json").is_file()
    again = benchmark(
        real, run=tiny_run, seeds=2, min_steps=5, ratio_sweep=[2], out=tmp_path / "report", export_filter="none",
        **FAST,
    )  # fmt: skip
    assert again.record["protocol"]["synthetic"]["exported_per_class"] == 12  # 2 × 6: the export was redone
    assert again.record["protocol"]["counts"]["real+synthetic@2x"]["cat"] == {"real": 6, "synthetic": 12}


def test_a_filtered_export_short_of_images_is_made_up_by_real_repeats(tiny_run, tmp_path):
    """The untrained generator fails the diversity check against these real images: every class is skipped, and
    real+synthetic oversamples the real images instead (no synthetic-only arm)."""
    pytest.importorskip("gansynth.exporter")
    real = make_folder(tmp_path / "real", {"cat": 8, "dog": 8, "fox": 4}, size=16, mode="L")
    result = benchmark(
        real, run=tiny_run, seeds=2, min_steps=5, out=tmp_path / "report", arms=["real", "real+synthetic", "synthetic"],
        **FAST,
    )  # fmt: skip
    filtered = result.record["protocol"]["synthetic"]["filter"]
    assert all(r["skipped"] for r in filtered.values())
    assert "synthetic" not in result.arms
    assert result.record["protocol"]["counts"]["real+synthetic"]["fox"] == {"real": 3, "synthetic": 3}
    assert any("oversampl" in note for note in result.record["protocol"]["notes"])

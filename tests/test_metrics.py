"""Metrics: conventions on synthetic features, density/coverage against the paper's definitions, the extractors
(inception from a random weights file, domain on digits), collapse alarms, the record, and CLI errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_folder, make_run, run_cli
from PIL import Image

from gansynth.data import load_dataset
from gansynth.errors import CheckpointError, ConfigError, MetricError
from gansynth.metrics import formulas
from gansynth.metrics.extractors import INCEPTION_WEIGHTS, check_extractor_name, load_state_dict_file
from gansynth.metrics.score import COLLAPSE_THRESHOLD, check_sizes, score

RECORD_KEYS = {
    "fid", "kid", "is", "precision", "recall", "density", "coverage", "label_fidelity", "memorization", "per_class",
    "per_class_fid_mean", "per_class_fid_worst", "alarms", "notes", "protocol",
}  # fmt: skip
PROTOCOL_KEYS = {
    "feature_extractor", "weights_sha256", "num_generated", "num_real", "reference", "resolution",
    "domain_heldout_accuracy", "kimg", "checkpoint_sha256",
}  # fmt: skip
CLASS_KEYS = {"fid", "precision", "recall", "density", "coverage", "label_fidelity", "collapse"}


def assert_user_error(args, capsys, *fragments: str) -> str:
    code, _, err = run_cli(args, capsys)
    assert code == 2, err
    assert "error:" in err and "hint:" in err and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    return err


def write_folder(root: Path, images: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> Path:
    """uint8 ``[N, C, H, W]`` images as ``root/<class>/<i>.png``."""
    for i, (image, label) in enumerate(zip(images, labels.tolist())):
        folder = root / class_names[label]
        folder.mkdir(parents=True, exist_ok=True)
        array = image.numpy()
        Image.fromarray(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)).save(folder / f"{i:05d}.png")
    return root


# --- conventions on synthetic features --------------------------------------------------------------------------


def test_identical_sets_are_perfect():
    real = torch.randn(400, 32, generator=torch.Generator().manual_seed(0))
    assert formulas.fid(real, real) == pytest.approx(0.0, abs=1e-6)
    precision, recall = formulas.precision_recall(real, real)
    assert precision == pytest.approx(1.0) and recall == pytest.approx(1.0)
    density, coverage = formulas.density_coverage(real, real)
    assert density == pytest.approx(1.0, abs=1e-9) and coverage == pytest.approx(1.0)


def test_tight_cluster_inside_wide_cloud_has_high_precision_low_recall():
    gen = torch.Generator().manual_seed(1)
    real = torch.randn(1000, 16, generator=gen)  # wide cloud
    fake = 0.05 * torch.randn(1000, 16, generator=gen)  # tight cluster at its centre
    precision, recall = formulas.precision_recall(fake, real)
    assert precision > 0.9 and recall < 0.2
    density, coverage = formulas.density_coverage(fake, real)
    assert coverage < 0.2 and density > 1.0  # samples pile up in the densest real neighbourhoods


def test_fid_grows_monotonically_with_shift():
    gen = torch.Generator().manual_seed(2)
    real, fake = torch.randn(500, 8, generator=gen), torch.randn(500, 8, generator=gen)
    fids = [formulas.fid(fake + shift, real) for shift in (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)]
    assert all(a < b for a, b in zip(fids, fids[1:])), fids


@pytest.mark.parametrize("m,n", [(40, 60), (120, 90)])
def test_per_class_fid_from_samples_equals_torch_fidelity(m, n):
    gen = torch.Generator().manual_seed(m)
    fake, real = torch.randn(m, 128, generator=gen) * 1.5 + 0.3, torch.randn(n, 128, generator=gen)
    reference = formulas.fid(fake, real)  # torch-fidelity's eigenvalue formula
    assert formulas.fid_from_samples(fake, real) == pytest.approx(reference, rel=1e-6)
    assert formulas.class_fid(fake, real) == pytest.approx(reference, rel=1e-6)


def _density_coverage_by_definition(fake: np.ndarray, real: np.ndarray, k: int) -> tuple[float, float]:
    """Naeem et al. 2020, eqs. for density and coverage, written as plain loops in float64."""
    radii = []
    for i in range(len(real)):
        others = sorted(float(np.linalg.norm(real[i] - real[j])) for j in range(len(real)) if j != i)
        radii.append(others[k - 1])
    inside = 0
    for j in range(len(fake)):
        for i in range(len(real)):
            if np.linalg.norm(fake[j] - real[i]) < radii[i]:
                inside += 1
    covered = 0
    for i in range(len(real)):
        if min(float(np.linalg.norm(fake[j] - real[i])) for j in range(len(fake))) < radii[i]:
            covered += 1
    return inside / (k * len(fake)), covered / len(real)


@pytest.mark.parametrize("seed,k", [(0, 5), (1, 3)])
def test_density_coverage_match_the_paper_definitions(seed, k):
    rng = np.random.default_rng(seed)
    real, fake = rng.normal(size=(120, 6)), rng.normal(0.3, 1.2, size=(90, 6))
    expected = _density_coverage_by_definition(fake, real, k)
    got = formulas.density_coverage(torch.from_numpy(fake).float(), torch.from_numpy(real).float(), k=k)
    # the loop reads float32-rounded features too, so both see the same points
    expected32 = _density_coverage_by_definition(fake.astype(np.float32), real.astype(np.float32), k)
    assert got == pytest.approx(expected32, abs=1e-6)
    assert expected == pytest.approx(expected32, abs=0.02)
    combined = formulas.neighbourhood_metrics(torch.from_numpy(fake).float(), torch.from_numpy(real).float(), k=k)
    assert (combined["density"], combined["coverage"]) == pytest.approx(got, abs=1e-12)


def test_memorization_separates_copies_from_fresh_samples():
    gen = torch.Generator().manual_seed(3)
    real, fresh = torch.randn(800, 8, generator=gen), torch.randn(800, 8, generator=gen)
    copies = real[:400] + 1e-4 * torch.randn(400, 8, generator=gen)
    assert formulas.memorization(copies, real) == pytest.approx(1.0)
    assert 0.0 < formulas.memorization(fresh, real) < 0.15  # ≈ the 5th percentile by construction


def test_kid_and_is_are_null_when_they_cannot_be_computed():
    small = torch.randn(50, 8)
    assert formulas.kid(small, small) is None
    assert formulas.kid(torch.randn(150, 8), torch.randn(150, 8)) is not None
    assert formulas.inception_score(torch.randn(5, 1008)) is None


def test_score_flags_a_collapsed_class_and_finds_the_worst_fid():
    gen = torch.Generator().manual_seed(4)
    real = torch.cat([torch.randn(200, 8, generator=gen), torch.randn(200, 8, generator=gen) + 6])
    real_labels = torch.tensor([0] * 200 + [1] * 200)
    fake = torch.cat([torch.randn(200, 8, generator=gen), real[200:201].repeat(200, 1)])  # class b: one sample
    record = score(fake, real_labels, real, real_labels, ["a", "b"], label_hits=torch.ones(400, dtype=torch.bool))
    assert record["per_class"]["b"]["collapse"] and not record["per_class"]["a"]["collapse"]
    assert record["per_class"]["b"]["recall"] < COLLAPSE_THRESHOLD
    assert record["per_class_fid_worst"]["class"] == "b"
    assert [a["class"] for a in record["alarms"] if a["kind"] == "collapse"] == ["b"]
    assert record["label_fidelity"] == 1.0 and record["is"] is None
    mean = (record["per_class"]["a"]["fid"] + record["per_class"]["b"]["fid"]) / 2
    assert record["per_class_fid_mean"] == pytest.approx(mean)


def test_non_finite_fids_become_null_with_a_note_never_nan(monkeypatch):
    """A degenerate covariance can make torch-fidelity's FID NaN: the record says null (valid JSON), with a note."""
    gen = torch.Generator().manual_seed(5)
    real, fake = torch.randn(100, 64, generator=gen), torch.randn(100, 64, generator=gen)  # per class: 50 < F
    labels = torch.tensor([0] * 50 + [1] * 50)
    class_fid = formulas.class_fid
    monkeypatch.setattr(formulas, "fid", lambda g, r: math.nan)
    monkeypatch.setattr(formulas, "class_fid", lambda g, r: math.inf if g[0, 0] == fake[50, 0] else class_fid(g, r))
    record = score(fake, labels, real, labels, ["a", "b"])
    assert record["fid"] is None and record["per_class"]["b"]["fid"] is None
    assert record["per_class"]["a"]["fid"] is not None and record["per_class_fid_worst"]["class"] == "a"
    assert record["notes"] == ["not finite, reported as null: fid, b/fid (NaN or inf in the features)"]
    json.dumps(record, allow_nan=False)  # valid JSON: no NaN or Infinity anywhere


def test_too_few_images_names_the_metric_and_the_count():
    with pytest.raises(MetricError, match="precision/recall needs at least 4") as info:
        check_sizes(3, 100, "--generated g", "the real images")
    assert "--generated g has 3 images" in info.value.message
    with pytest.raises(MetricError, match="density/coverage needs at least 6"):
        check_sizes(100, 5, "--generated g", "the real images")


# --- extractors ---------------------------------------------------------------------------------------------------


def test_unknown_extractor_suggests_close_names():
    with pytest.raises(ConfigError, match="unknown feature extractor") as info:
        check_extractor_name("inceptoin")
    assert "inception" in info.value.hint


def test_weights_are_never_unpickled(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    path = tmp_path / "evil.pth"
    torch.save({"x": Payload()}, path)
    with pytest.raises(MetricError, match="not a readable weights file"):
        load_state_dict_file(path)


def _random_inception_weights(path: Path, monkeypatch) -> Path:
    """A randomly initialised state_dict of torch-fidelity's inception-v3-compat network (no download)."""
    import torch_fidelity.feature_extractor_inceptionv3 as inception

    with monkeypatch.context() as patch:
        patch.setattr(inception, "load_state_dict_from_url", lambda *a, **k: {})  # never reach the network
        patch.setattr(inception.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        torch.manual_seed(0)
        network = inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(network.state_dict(), path)
    return path


@pytest.fixture
def no_torch_home(tmp_path, monkeypatch):
    """An empty $TORCH_HOME, so that no inception weights are found."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return tmp_path / "torch-home"


def test_inception_without_weights_exits_2(tmp_path, capsys, no_torch_home):
    real = make_folder(tmp_path / "real", {"a": 8, "b": 8})
    err = assert_user_error(
        ["evaluate", "--generated", real, "--data", real, "--feature-extractor", "inception", "--device", "cpu"],
        capsys,
        INCEPTION_WEIGHTS,
        "--feature-extractor domain",
    )
    assert str(no_torch_home / "hub" / "checkpoints") in err.replace("\n", "")


def test_inception_end_to_end_with_a_random_weights_file(tmp_path, capsys, monkeypatch, no_torch_home):
    weights = _random_inception_weights(tmp_path / "inception.pth", monkeypatch)
    real = make_folder(tmp_path / "real", {"a": 6, "b": 6}, seed=0)  # the fewest images every metric accepts
    fake = make_folder(tmp_path / "fake", {"a": 5, "b": 5}, seed=1)
    out = tmp_path / "record.json"
    args = ["evaluate", "--generated", fake, "--data", real, "--feature-extractor", "inception", "--weights", weights]
    code, stdout, err = run_cli([*args, "--json", out, "--device", "cpu", "--quiet"], capsys)
    assert code == 0, err
    record = json.loads(out.read_text())
    assert record["protocol"]["feature_extractor"] == "inception"
    assert record["protocol"]["feature_dim"] == 2048 and record["protocol"]["num_generated"] == 10
    assert record["is"] is not None and math.isfinite(record["is"]) and math.isfinite(record["fid"])
    assert record["kid"] is None  # 10 images are too few for KID
    from gansynth.data.fingerprint import hash_file

    assert record["protocol"]["weights_sha256"] == hash_file(weights)
    assert "inception" in stdout


def test_auto_says_which_extractor_it_chose(tmp_path, no_torch_home):
    from gansynth.metrics.evaluate import _choose_extractor

    name, path, notes = _choose_extractor("auto", None)
    assert (name, path) == ("domain", None) and "inception weights" in notes[0] and "not found" in notes[0]
    checkpoints = no_torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / INCEPTION_WEIGHTS).write_bytes(b"stand-in")
    name, path, notes = _choose_extractor("auto", None)
    assert (name, path) == ("inception", checkpoints / INCEPTION_WEIGHTS) and "auto" in notes[0]


# --- digits with the domain extractor ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_setup(tmp_path_factory):
    """Real digits split in two halves written as folders, a noise folder, and one shared cache for the module
    (the domain classifier of half B is trained once)."""
    root = tmp_path_factory.mktemp("digits")
    digits = load_dataset("digits")
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))
    half_a, half_b = order[: len(order) // 2], order[len(order) // 2 :]
    write_folder(root / "a", digits.images[half_a], digits.labels[half_a], digits.class_names)
    write_folder(root / "b", digits.images[half_b], digits.labels[half_b], digits.class_names)
    noise = torch.randint(0, 256, (900, 1, 16, 16), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    write_folder(root / "noise", noise, torch.arange(900) % 10, digits.class_names)
    return root


@pytest.fixture
def shared_cache(digits_setup, monkeypatch):
    monkeypatch.setenv("GANSYNTH_CACHE", str(digits_setup / "cache"))


def test_digits_halves_score_far_better_than_noise(digits_setup, shared_cache):
    from gansynth.metrics import evaluate

    half = evaluate(data=digits_setup / "b", generated=digits_setup / "a", feature_extractor="domain", progress=False)
    noise = evaluate(
        data=digits_setup / "b", generated=digits_setup / "noise", feature_extractor="domain", progress=False
    )
    assert half["fid"] * 5 <= noise["fid"], (half["fid"], noise["fid"])
    assert half["precision"] > 0.6 and half["recall"] > 0.6
    assert noise["precision"] < 0.2
    assert half["label_fidelity"] > 0.9 and noise["label_fidelity"] < 0.5
    assert half["protocol"]["domain_heldout_accuracy"] > 0.9
    from gansynth.metrics.records import Alarm, ClassScores, MetricsRecord

    assert set(half) == set(MetricsRecord.__annotations__)  # the typed record names every key, no more
    assert all(set(row) == set(ClassScores.__annotations__) for row in half["per_class"].values())
    assert all(set(alarm) == set(Alarm.__annotations__) for alarm in noise["alarms"])
    assert set(half) == RECORD_KEYS and PROTOCOL_KEYS <= set(half["protocol"])
    assert set(half["per_class"]) == {str(d) for d in range(10)}
    assert all(CLASS_KEYS <= set(row) for row in half["per_class"].values())
    assert not [a for a in half["alarms"] if a["kind"] == "collapse"]
    assert half["memorization"] < 0.2  # an independent half is not a copy


class CollapsedSampler:
    """The Sampler interface, but every class returns one real image, repeated."""

    def __init__(self, dataset, run_dir: Path):
        self.class_names = dataset.class_names
        self.num_classes = len(self.class_names)
        self.resolution, self.channels = dataset.resolution, dataset.channels
        self.first = [dataset.images[(dataset.labels == k).nonzero()[0, 0]] for k in range(self.num_classes)]
        self.run_dir, self.kimg, self.checkpoint_sha256 = run_dir, 12.5, "c" * 64

    def generate(self, class_index: int, n: int, seed: int = 0, truncation=None, batch_size: int = 256, size=None):
        assert size in (None, self.resolution)
        return self.first[class_index][None].repeat(n, 1, 1, 1)


def test_collapsed_generator_raises_the_per_class_alarm(digits_setup, shared_cache, tmp_path):
    from gansynth.metrics import evaluate_sampler

    real = load_dataset(digits_setup / "b")
    record = evaluate_sampler(CollapsedSampler(real, tmp_path), real, num_samples=500, feature_extractor="domain")
    assert record["recall"] < 0.05 and record["coverage"] < COLLAPSE_THRESHOLD
    for name, row in record["per_class"].items():
        # one image covers only the few real neighbourhoods around it: ≈ (k + 1) / 90 real images of the class
        assert row["collapse"] and row["recall"] < COLLAPSE_THRESHOLD and row["coverage"] < 0.2, name
        assert row["num_generated"] == 50
    assert {a["class"] for a in record["alarms"] if a["kind"] == "collapse"} == set(real.class_names)
    assert record["memorization"] == 1.0 and any(a["kind"] == "memorization" for a in record["alarms"])
    assert record["protocol"]["kimg"] == 12.5 and record["protocol"]["checkpoint_sha256"] == "c" * 64


def test_real_features_are_cached_by_content(digits_setup, shared_cache, monkeypatch):
    from gansynth.metrics import evaluate, features

    first = evaluate(data=digits_setup / "b", generated=digits_setup / "a", feature_extractor="domain", progress=False)

    def recompute(*args, **kwargs):
        raise AssertionError("real features were extracted again instead of read from the cache")

    monkeypatch.setattr(features, "extract", recompute)  # real_features() looks it up here; evaluate has its own
    again = evaluate(data=digits_setup / "b", generated=digits_setup / "a", feature_extractor="domain", progress=False)
    assert again["fid"] == pytest.approx(first["fid"]) and again["recall"] == pytest.approx(first["recall"])


# --- runs and the CLI -------------------------------------------------------------------------------------------


def test_cli_evaluates_a_run_and_appends_to_metrics_jsonl(tmp_path, capsys, no_torch_home):
    real = make_folder(tmp_path / "real", {"cat": 12, "dog": 12, "fox": 12}, mode="L")
    run = make_run(tmp_path / "runs" / "tiny", ["cat", "dog", "fox"])
    out = tmp_path / "m.json"
    args = ["evaluate", run, "--data", real, "--num-samples", "30", "--json", out, "--device", "cpu", "--quiet"]
    code, stdout, err = run_cli(args, capsys)
    assert code == 0, err
    record = json.loads(out.read_text())
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0]) == record
    assert record["protocol"]["num_generated"] == 30 and record["protocol"]["num_real"] == 36
    assert record["protocol"]["feature_extractor"] == "domain" and record["protocol"]["kimg"] == 0.0
    assert [row["num_generated"] for row in record["per_class"].values()] == [10, 10, 10]
    assert "domain" in stdout and "held-out accuracy" in stdout and "auto" in stdout


def test_cli_rejects_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert_user_error(["evaluate", tmp_path, "--device", "cpu"], capsys, "not a gansynth run directory")


def test_cli_rejects_folders_without_a_common_class(tmp_path, capsys):
    real = make_folder(tmp_path / "real", {"a": 8, "b": 8})
    fake = make_folder(tmp_path / "fake", {"x": 8, "y": 8})
    assert_user_error(["evaluate", "--generated", fake, "--data", real], capsys, "no class in common")


def test_cli_rejects_too_few_images_naming_the_metric(tmp_path, capsys):
    real = make_folder(tmp_path / "real", {"a": 8, "b": 8})
    fake = make_folder(tmp_path / "fake", {"a": 1, "b": 2})
    assert_user_error(
        ["evaluate", "--generated", fake, "--data", real], capsys, "has 3 images", "precision/recall", "at least 4"
    )


def test_cli_rejects_an_unknown_extractor(tmp_path, capsys):
    real = make_folder(tmp_path / "real", {"a": 8, "b": 8})
    args = ["evaluate", "--generated", real, "--data", real, "--feature-extractor", "dinov3"]
    assert_user_error(args, capsys, "unknown feature extractor 'dinov3'", "dinov2")


def test_cli_generated_needs_real_images(tmp_path, capsys):
    fake = make_folder(tmp_path / "fake", {"a": 8})
    assert_user_error(["evaluate", "--generated", fake], capsys, "--generated needs the real images", "--data")
    args = ["evaluate", "--generated", fake, "--data", fake, "--checkpoint", "best"]
    assert_user_error(args, capsys, "--checkpoint best picks a run's generator")


def test_cli_missing_weights_file(tmp_path, capsys):
    real = make_folder(tmp_path / "real", {"a": 8, "b": 8})
    args = ["evaluate", "--generated", real, "--data", real, "--feature-extractor", "dinov2"]
    assert_user_error([*args, "--weights", tmp_path / "nope.pth"], capsys, "does not exist")


def test_dinov2_from_a_weights_file(tmp_path, capsys):
    import timm

    torch.manual_seed(0)
    net = timm.create_model("vit_small_patch14_dinov2", pretrained=False, num_classes=0, img_size=224)
    weights = tmp_path / "dinov2.pth"
    torch.save(net.state_dict(), weights)
    real = make_folder(tmp_path / "real", {"a": 8, "b": 8}, seed=0)
    fake = make_folder(tmp_path / "fake", {"a": 6, "b": 6}, seed=1)
    out = tmp_path / "r.json"
    args = ["evaluate", "--generated", fake, "--data", real, "--feature-extractor", "dinov2", "--weights", weights]
    code, _, err = run_cli([*args, "--json", out, "--device", "cpu", "--quiet"], capsys)
    assert code == 0, err
    record = json.loads(out.read_text())
    assert record["protocol"]["feature_dim"] == 384 and math.isfinite(record["fid"])


def test_evaluation_during_fit_logs_metrics_and_keeps_the_best_generator(tmp_path, capsys, no_torch_home):
    from gansynth.exporter import export
    from gansynth.sampler import load_sampler
    from gansynth.train.fit import fit

    folder = make_folder(tmp_path / "imgs", {"a": 12, "b": 12}, mode="L")
    tiny = ["model.arch=dcgan", "model.g_width=16", "model.d_width=16", "model.z_dim=8", "model.embed_dim=4",
            "eval.num_samples=24", "eval.feature_extractor=domain", "runtime.device=cpu"]  # fmt: skip
    run = tmp_path / "run"
    fit(folder, out=run, kimg=0.032, batch_size=8, overrides=tiny, progress=False)
    with pytest.raises(CheckpointError, match="no best checkpoint"):
        load_sampler(run, checkpoint="best")
    # evaluations at 0.064 and 0.096 kimg, then one more tick without one (ticks every 0.016 kimg)
    result = fit(folder, out=run, kimg=0.112, batch_size=8, eval_kimg=0.032, overrides=[*tiny, "train.tick_kimg=0.016"],
                 progress=False, resume=True)  # fmt: skip
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in records] == [0.064, 0.096]  # every eval_kimg after the resume point
    assert all(r["protocol"]["feature_extractor"] == "domain" and r["fid"] is not None for r in records)
    assert result.last_tick["kimg"] == 0.112 and result.last_tick["fid"] == records[-1]["fid"]  # FID stays shown
    best = json.loads((run / "best" / "metrics.json").read_text())
    assert best["fid"] == min(r["fid"] for r in records) and best["kimg"] in (0.064, 0.096)
    sampler = load_sampler(run, checkpoint="best")
    assert sampler.kimg == best["kimg"] and sampler.checkpoint_file == "best/generator_ema.safetensors"
    exported = export(run, tmp_path / "out", per_class=2, checkpoint="best", progress=False, workers=0)
    manifest = json.loads((exported.out / "manifest.json").read_text())
    assert manifest["run"]["checkpoint"] == "best/generator_ema.safetensors"
    assert manifest["run"]["checkpoint_sha256"] == best["sha256"]
    (run / "best" / "generator_ema.safetensors").write_bytes(b"truncated")
    code, _, err = run_cli(["sample", run, "--class", "a", "--checkpoint", "best", "--out", tmp_path / "g.png"], capsys)
    assert code == 2 and "sha256" in err and "hint:" in err

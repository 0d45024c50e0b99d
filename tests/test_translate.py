"""gansynth translate: networks, CLI errors, exact resume (also after kill -9), deterministic labeled export that
ImageFolder and Hugging Face imagefolder read with the right labels, and (slow) the fonts → digits learning test."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_user_error, run_cli, tree_hashes
from PIL import Image

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--g-width", "4", "--d-width", "4", "--batch-size", "4", "--set", "model.blocks=1", "--device", "cpu",
        "--quiet"]  # fmt: skip


def make_pair(root: Path, per_class: int = 3, b_count: int = 12, b_size: int = 24) -> tuple[Path, Path]:
    """Domain A: printed digits 0-2 (16 px, gray), class folders; domain B: loose RGB images of another size."""
    from gansynth.benchmark.digits import write_image_folder
    from gansynth.translate.fonts import font_digits

    fonts = font_digits(per_class=per_class, resolution=16, fonts=[])
    keep = torch.nonzero(fonts.labels < 3).flatten()
    a = write_image_folder(fonts.subset(keep), root / "a")
    for name in [n for n in fonts.class_names if int(n) >= 3]:
        (a / name).rmdir()
    (root / "b").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(b_count):
        Image.fromarray(rng.integers(0, 255, (b_size, b_size, 3), dtype=np.uint8)).save(root / "b" / f"{i}.png")
    return a, root / "b"


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    return make_pair(tmp_path_factory.mktemp("pair"))


@pytest.fixture(scope="module")
def tiny_run(pair, tmp_path_factory) -> Path:
    from gansynth.cli import main

    out = tmp_path_factory.mktemp("runs") / "run"
    with pytest.raises(SystemExit) as info:
        main(["translate", "fit", str(pair[0]), str(pair[1]), "--out", str(out), "--kimg", "0.008", *TINY])
    assert info.value.code == 0
    return out


# --- networks -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("resolution,patches", [(16, 6), (32, 6), (64, 6)])
def test_networks_keep_the_side_and_score_patches(resolution, patches):
    from gansynth.translate.config import TranslateModelConfig
    from gansynth.translate.networks import build_translator, patch_layers

    nets = build_translator(TranslateModelConfig(g_width=4, d_width=4, blocks=1), resolution, 1, 3)
    x = torch.rand(2, 1, resolution, resolution) * 2 - 1
    y = nets["generator_ab"](x)
    assert y.shape == (2, 3, resolution, resolution) and y.abs().max() <= 1
    assert nets["generator_ba"](y).shape == x.shape
    score = nets["discriminator_b"](y)
    assert score.shape == (2, 1, patches, patches)  # 1, 2, 3 strided layers: 16, 34, 70 px patches
    score.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in nets["generator_ab"].parameters())
    assert [patch_layers(r) for r in (16, 32, 64, 128)] == [1, 2, 3, 3]


def test_history_pool_and_learning_rate_schedule():
    from gansynth.translate.train import HistoryPool, lr_factor

    pool, rng = HistoryPool(4), torch.Generator().manual_seed(0)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first, rng), first) and pool.count == 4  # filling: the new fakes pass through
    mixed = pool.query(torch.full((64, 1, 1, 1), 9.0), rng)
    assert 0 < int((mixed != 9).sum()) < 64  # once full, about half are older fakes
    assert [lr_factor(s, 100, 0.5) for s in (0, 49, 50, 75, 100)] == [1.0, 1.0, 1.0, 0.5, 0.0]


def test_semantic_classifier_learns_a_and_its_loss_tells_kept_labels_from_lost_ones():
    from gansynth.images import to_float
    from gansynth.translate.fonts import font_digits
    from gansynth.translate.semantic import match_channels, semantic_loss, train_semantic_classifier

    a, held_out = font_digits(per_class=40, fonts=[]), font_digits(per_class=10, seed=1, fonts=[])
    net = train_semantic_classifier(a.images, a.labels, 10, epochs=15, seed=0)
    x = to_float(held_out.images)
    with torch.no_grad():
        assert float((net(x).argmax(1) == held_out.labels).float().mean()) > 0.6  # chance: 0.1
    kept, lost = semantic_loss(net, x, held_out.labels), semantic_loss(net, x, (held_out.labels + 1) % 10)
    assert float(kept) < 0.5 * float(lost)
    rgb = match_channels(x, 3).requires_grad_(True)  # an RGB translation of gray A: channels averaged
    semantic_loss(net, rgb, held_out.labels).backward()
    assert rgb.grad is not None and rgb.grad.abs().sum() > 0  # the generator gets a gradient ...
    assert all(p.grad is None and not p.requires_grad for p in net.parameters())  # ... f_A stays frozen


def test_semantic_weight_adds_its_term_to_the_generator_loss(pair, tmp_path):
    from gansynth.data import load_dataset
    from gansynth.runtime import make_runtime
    from gansynth.translate.config import build_translate_config
    from gansynth.translate.train import CycleTrainer

    a, b = load_dataset(pair[0], 16), load_dataset(pair[1], 16, unlabeled=True)
    losses = {}
    for weight in (0.0, 2.0):
        config = build_translate_config(None, {"model.g_width": 4, "model.d_width": 4, "model.blocks": 1,
                                               "train.batch_size": 4, "train.semantic_weight": weight,
                                               "train.semantic_weight_b": 0.0})  # fmt: skip
        trainer = CycleTrainer(config, a, b, make_runtime("cpu", "fp32", False, "default"), tmp_path)
        losses[weight] = trainer.train_step()
        assert (trainer.semantic is None) == (weight == 0)  # f_A is trained only when the loss is on
    assert "semantic" not in losses[0.0] and float(losses[2.0]["semantic"]) > 0
    extra = float(losses[2.0]["loss_g"] - losses[0.0]["loss_g"])
    assert extra == pytest.approx(2.0 * float(losses[2.0]["semantic"]), rel=1e-4)  # same nets, same batches


def test_semantic_weight_b_adds_cycadas_b_side_term(pair, tmp_path):
    """CE(f_A(F(b)), argmax f_A(b)): its own weight, f_A trained for it alone, pseudo-labels without gradient."""
    from gansynth.data import load_dataset
    from gansynth.runtime import make_runtime
    from gansynth.translate.config import build_translate_config
    from gansynth.translate.semantic import pseudo_labels
    from gansynth.translate.train import CycleTrainer

    a, b = load_dataset(pair[0], 16), load_dataset(pair[1], 16, unlabeled=True)
    losses = {}
    for weight in (0.0, 3.0):
        config = build_translate_config(None, {"model.g_width": 4, "model.d_width": 4, "model.blocks": 1,
            "train.batch_size": 4, "train.semantic_weight": 0.0, "train.semantic_weight_b": weight})  # fmt: skip
        trainer = CycleTrainer(config, a, b, make_runtime("cpu", "fp32", False, "default"), tmp_path)
        losses[weight] = trainer.train_step()
        assert (trainer.semantic is None) == (weight == 0)
    assert "semantic_b" not in losses[0.0] and "semantic" not in losses[3.0] and float(losses[3.0]["semantic_b"]) > 0
    extra = float(losses[3.0]["loss_g"] - losses[0.0]["loss_g"])
    assert extra == pytest.approx(3.0 * float(losses[3.0]["semantic_b"]), rel=1e-4)
    x = torch.zeros(2, 1, 16, 16, requires_grad=True)
    targets = pseudo_labels(trainer.semantic, x)
    assert targets.shape == (2,) and targets.dtype == torch.long and not targets.requires_grad


def test_semantic_classifier_trains_in_fp32_inside_a_mixed_precision_step():
    from gansynth.translate.fonts import font_digits
    from gansynth.translate.semantic import train_semantic_classifier

    a = font_digits(per_class=4, fonts=[])
    plain = train_semantic_classifier(a.images, a.labels, 10, epochs=1, seed=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as the trainer's step runs under bf16 on a CPU
        inside = train_semantic_classifier(a.images, a.labels, 10, epochs=1, seed=0)
    for p, q in zip(plain.parameters(), inside.parameters(), strict=True):
        assert p.dtype == q.dtype == torch.float32 and torch.equal(p, q)


def test_look_augmentation_restyles_and_makes_f_a_read_restyled_digits():
    from gansynth.images import to_float
    from gansynth.translate.fonts import font_digits
    from gansynth.translate.semantic import augment_look, blur, train_semantic_classifier

    x = to_float(font_digits(per_class=4, fonts=[]).images)
    one, two = (augment_look(x, torch.Generator().manual_seed(3)) for _ in range(2))
    assert torch.equal(one, two) and one.shape == x.shape and one.min() >= -1 and one.max() <= 1  # seeded, in range
    assert float((one - x).abs().mean()) > 0.02  # restyled ...
    a, held_out = font_digits(per_class=40, fonts=[]), font_digits(per_class=10, seed=1, fonts=[])
    bold_soft = blur(torch.nn.functional.max_pool2d(to_float(held_out.images), 3, 1, 1))
    restyled = ((bold_soft + 1) / 2 * 0.7) * 2 - 1  # bold strokes, soft edges, dim ink
    scores = {}
    for augment in (False, True):
        net = train_semantic_classifier(a.images, a.labels, 10, epochs=15, seed=0, augment=augment)
        with torch.no_grad():
            scores[augment] = float((net(restyled).argmax(1) == held_out.labels).float().mean())
    assert scores[True] > scores[False] + 0.1, scores  # ... and f_A trained on restyled A reads such digits


# --- bad input ----------------------------------------------------------------------------------------------------


def test_bad_input_is_an_error_and_a_hint(pair, tmp_path, capsys):
    a, b = pair
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("L", (16, 16)).save(flat / "x.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_user_error(["translate", "fit", flat, b, *TINY], capsys, "class subfolders")
    assert_user_error(["translate", "fit", a, empty, *TINY], capsys, "domain B")
    assert_user_error(["translate", "fit", a, tmp_path / "missing", *TINY], capsys, "does not exist")
    assert_user_error(["translate", "fit", a, b, "--bogus", *TINY], capsys, "--bogus")
    assert_user_error(["translate", "fit", a, b, "--set", "train.cycle_wieght=3", *TINY], capsys, "cycle_weight")
    assert_user_error(["translate", "fit", a, b, "--set", "train.semantic_weight_b=-1", *TINY], capsys, ">= 0")
    assert_user_error(["translate", "fit", a, b, "--resolution", "20", *TINY], capsys, "16, 32")
    assert_user_error(["translate", "export", tmp_path / "nowhere"], capsys, "does not exist")
    assert_user_error(["translate", "nope"], capsys, "translate --help")


def test_a_gan_run_is_not_a_translation_run(tiny_run, tmp_path, capsys):
    from conftest import make_run

    gan = make_run(tmp_path / "gan", ["x", "y"])
    assert_user_error(["translate", "export", gan, "--out", tmp_path / "e"], capsys, "translate fit")


# --- fit, resume --------------------------------------------------------------------------------------------------


def test_fit_writes_the_run_files_and_mixed_sizes_train_together(tiny_run):
    from gansynth.rundir import RunDir

    names = {p.name for p in tiny_run.iterdir()}
    assert {"config.json", "dataset.json", "generator.safetensors", "discriminator.safetensors"} <= names
    assert {"train_state.json", "train_state.safetensors", "log.jsonl", "samples"} <= names
    info = RunDir(tiny_run).dataset()
    assert info["class_names"] == ["0", "1", "2"] and info["channels"] == 1 and info["resolution"] == 16
    assert info["domain_b"]["channels"] == 3 and info["domain_b"]["native_size"] == 24  # B: RGB at 24 px
    grid = Image.open(next((tiny_run / "samples").glob("grid-*.png")))
    assert grid.size == (3 * 16, 3 * 16)  # rows a → G(a) → F(G(a)), one column per class


def test_a_budget_plans_the_length_from_a_calibration(pair, tmp_path):
    from gansynth.checkpoint import read_config
    from gansynth.translate import fit
    from gansynth.translate.config import TranslateConfig

    options = {"g_width": 4, "d_width": 4, "batch_size": 4, "device": "cpu"}
    result = fit(*pair, out=tmp_path / "r", budget="10s", overrides=["model.blocks=1"], progress=False, **options)
    config = TranslateConfig.from_dict(read_config(result.run_dir))
    assert config.plan.source == "budget" and config.plan.budget_s == 10 and config.plan.img_per_s > 0
    assert config.train.kimg == pytest.approx(config.plan.img_per_s * 10 * 0.9 / 1000, rel=1e-2)
    assert result.status == "done" and result.kimg >= config.train.kimg


def _weights(run: Path) -> dict[str, torch.Tensor]:
    from gansynth.checkpoint import load_tensors

    return {**load_tensors(run / "generator.safetensors"), **load_tensors(run / "discriminator.safetensors")}


def test_resume_continues_exactly(pair, tmp_path, capsys):
    a, b = pair
    straight, split = tmp_path / "straight", tmp_path / "split"
    tiny = [*TINY, "--semantic-weight", "1"]  # f_A (the semantic loss's classifier) travels in the snapshot
    assert run_cli(["translate", "fit", a, b, "--out", straight, "--kimg", "0.016", *tiny], capsys)[0] == 0
    assert run_cli(["translate", "fit", a, b, "--out", split, "--kimg", "0.008", *tiny], capsys)[0] == 0
    code, _, err = run_cli(["translate", "fit", a, b, "--out", split, "--kimg", "0.016", "--resume", *tiny], capsys)
    assert code == 0 and "resumed" in err and "step 2" in err
    one, two = _weights(straight), _weights(split)
    assert one.keys() == two.keys() and all(torch.equal(one[k], two[k]) for k in one)
    from gansynth.checkpoint import load_train_state

    f_one, f_two = (load_train_state(run)[0]["semantic"] for run in (straight, split))
    assert f_one and f_one.keys() == f_two.keys() and all(torch.equal(f_one[k], f_two[k]) for k in f_one)


def test_kill_9_then_resume_finishes_the_plan(pair, tmp_path):
    a, b = pair
    run = tmp_path / "run"
    args = [sys.executable, "-m", "gansynth", "translate", "fit", str(a), str(b), "--out", str(run), "--kimg", "4",
            "--snapshot-kimg", "0.004", *TINY]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (run / "train_state.json").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (run / "train_state.json").exists()
    args[args.index("4")] = "0.04"  # a shorter plan, so the resumed run ends soon
    done = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "resumed" in done.stderr and "done:" in done.stderr


# --- export -------------------------------------------------------------------------------------------------------


def _rows(out: Path) -> list[dict]:
    with open(out / "images.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_export_is_deterministic_labeled_and_resumable(tiny_run, pair, tmp_path, capsys):
    first, second = tmp_path / "one", tmp_path / "two"
    code, out, _ = run_cli(["translate", "export", tiny_run, "--out", first, "--quiet"], capsys)
    assert code == 0 and "9 images written" in out
    assert run_cli(["translate", "export", tiny_run, "--out", second, "--quiet"], capsys)[0] == 0
    a, b = tree_hashes(first), tree_hashes(second)
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a if k != "manifest.json")
    (first / "images" / "1" / "1-0.png").unlink()  # an interrupted export: rerun completes it
    code, out, _ = run_cli(["translate", "export", tiny_run, "--out", first, "--quiet"], capsys)
    assert code == 0 and "3 images written, 6 kept" in out and tree_hashes(first) == a
    rows = _rows(first)
    assert [r["label"] for r in rows] == ["0"] * 3 + ["1"] * 3 + ["2"] * 3
    assert all(r["source"].startswith(r["class_name"] + "/") for r in rows)  # the A file each came from
    image = Image.open(first / rows[0]["file_name"])
    assert image.mode == "RGB" and image.size == (24, 24)  # B's look: RGB at B's native size
    assert_user_error(["translate", "export", tiny_run, "--out", first, "--per-class", "2"], capsys, "--force")
    assert_user_error(["translate", "export", tiny_run, "--out", tmp_path / "x", "--per-class", "9"], capsys, "fewer")


def test_export_loads_in_imagefolder_and_hugging_face(tiny_run, tmp_path):
    from torchvision.datasets import ImageFolder

    from gansynth.exporter import image_folder
    from gansynth.translate import export

    out = export(tiny_run, tmp_path / "out", per_class=2, progress=False).out
    by_file = {r["file_name"]: int(r["label"]) for r in _rows(out)}
    for folder in (ImageFolder(str(out / "images")), image_folder(out)):
        assert folder.classes == ["0", "1", "2"] and len(folder) == 6
        for path, target in folder.samples:
            assert by_file[Path(path).relative_to(out).as_posix()] == target
    datasets = pytest.importorskip("datasets")
    data = datasets.load_dataset("imagefolder", data_dir=str(out), split="train", cache_dir=str(tmp_path / "hf"))
    from gansynth.benchmark.data import load_images, synthetic_folder, with_export_class_names

    root, manifest = synthetic_folder(out)  # what `gansynth benchmark --synthetic DIR` reads
    labeled = with_export_class_names(load_images(root), manifest)
    assert labeled.class_names == ["0", "1", "2"] and labeled.counts == [2, 2, 2]
    label = data.features["label"]
    assert isinstance(label, datasets.ClassLabel) and label.names == ["0", "1", "2"]  # A's classes, in order
    assert sorted(data["label"]) == [0, 0, 1, 1, 2, 2]


def test_translator_api_returns_uint8_in_b(tiny_run):
    from gansynth.errors import DataError
    from gansynth.translate import load_translator

    translator = load_translator(tiny_run)
    images = torch.randint(0, 256, (70, 1, 16, 16), dtype=torch.uint8)  # more than one fixed-shape batch
    out = translator.translate(images)
    assert out.dtype == torch.uint8 and out.shape == (70, 3, 16, 16)
    assert torch.equal(translator.translate(images[:5]), out[:5])  # an image's result does not depend on the call
    assert translator.translate(out, "ba").shape == (70, 1, 16, 16)
    assert 0 <= translator.cycle_error(images) <= 255
    with pytest.raises(DataError):
        translator.translate(images.expand(-1, 3, -1, -1))


# --- learning -----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_translated_fonts_train_a_better_digit_classifier(tmp_path):
    """fonts → digits (benchmarks/translate_fonts_digits.py): the same classifier trained on translated printed
    digits scores higher on held-out handwritten digits than trained on the raw ones, mean over 5 seeds, and F(G(a))
    reconstructs a. Measured with the default (CyCADA's semantic loss on both directions, f_A trained on restyled
    A) at 24 kimg: +11.8 points (translated 66.8% ± 2.8), cycle error 10.3 levels; +10.9 and +9.6 with fit seeds
    1 and 2 (at 12 kimg: +10.9, +9.3, +6.9; the A-side loss only: +8.4; none: +6.3; benchmarks/README.md). Issue
    15 asks for +10, asserted here at the fit seed measured (+11.8): a machine where it fails shows the bar is not
    robustly met (the worst fit seed measured was +9.6)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "translate_fonts_digits.py"
    spec = importlib.util.spec_from_file_location("translate_fonts_digits", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.run(tmp_path, kimg=24.0, g_width=16, seeds=5, threads=1)
    assert result["gain_points"] >= 10, result
    assert min(result["translated_accuracy"]) >= 0.5, result  # labels kept: far above the 10% of scrambled digits
    assert result["cycle_error_levels"] < 20, result

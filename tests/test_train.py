"""Trainer: exact resume, kill -9 recovery, the NaN guard, compile + bf16 on CPU, sampling and augmentation."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import make_folder, wait_until
from safetensors.torch import load_file

from gansynth.config import build_config
from gansynth.data import load_dataset
from gansynth.errors import TrainingError
from gansynth.runtime import Runtime, cpu_runtime
from gansynth.train.augment import AUGMENTATIONS, augment, parse_policy
from gansynth.train.fit import fit
from gansynth.train.losses import Loss
from gansynth.train.steps import Batches
from gansynth.train.trainer import Trainer

TINY = [
    "model.arch=dcgan",
    "model.g_width=32",
    "model.d_width=16",
    "model.z_dim=16",
    "model.embed_dim=8",
    "train.batch_size=16",
    "train.tick_kimg=0.032",
    "augment.enabled=true",
    "augment.ada_target=0.6",
    "augment.ada_kimg=1",
    "runtime.device=cpu",
]


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "imgs", {"a": 6, "b": 5, "c": 4})


def weights(run: Path) -> dict[str, torch.Tensor]:
    out = {}
    for stem in ("generator", "generator_ema", "discriminator"):
        out |= {f"{stem}.{k}": v for k, v in load_file(run / f"{stem}.safetensors").items()}
    return out


def test_resume_equals_uninterrupted_training(folder, tmp_path):
    straight = fit(folder, out=tmp_path / "straight", kimg=0.16, overrides=TINY, progress=False)
    fit(folder, out=tmp_path / "split", kimg=0.096, overrides=TINY, progress=False)
    resumed = fit(folder, out=tmp_path / "split", kimg=0.16, resume=True, overrides=TINY, progress=False)
    assert straight.step == resumed.step == 10
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "split")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
    state = json.loads((tmp_path / "split" / "train_state.json").read_text())
    assert state["step"] == 10 and abs(state["kimg"] - 0.16) < 1e-9
    log = [json.loads(line) for line in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in log] == sorted({r["kimg"] for r in log})  # no duplicated ticks after resume


def test_resume_refuses_other_data_and_incompatible_config(folder, tmp_path):
    from gansynth.errors import CheckpointError

    fit(folder, out=tmp_path / "run", kimg=0.032, overrides=TINY, progress=False)
    other = make_folder(tmp_path / "other", {"a": 3, "b": 3}, seed=5)
    with pytest.raises(CheckpointError, match="different data"):
        fit(other, out=tmp_path / "run", kimg=0.064, resume=True, overrides=TINY, progress=False)
    with pytest.raises(CheckpointError, match="model.g_width"):
        fit(
            folder, out=tmp_path / "run", kimg=0.064, resume=True, overrides=[*TINY, "model.g_width=64"], progress=False
        )


def test_kill9_after_a_snapshot_then_resume_continues_from_it(folder, tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "gansynth",
        "fit",
        str(folder),
        "--out",
        str(run),
        "--kimg",
        "1000",
        "--snapshot-kimg",
        "0.048",
        "--quiet",
        *[arg for s in TINY for arg in ("--set", s)],
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until((run / "train_state.json").exists, timeout=120)
    time.sleep(1.0)  # let it get past a few more snapshots, possibly mid-write
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (run / "train_state.json").exists(), proc.stderr.read().decode()
    from gansynth.checkpoint import load_snapshot_record

    snapshot = load_snapshot_record(run)  # rolls a half-committed snapshot forward, checks every sha256
    target = snapshot["kimg"] + 0.032
    resumed = fit(folder, out=run, resume=True, overrides=[*TINY, f"train.kimg={target}"], progress=False)
    assert resumed.step == snapshot["step"] + 2
    assert abs(resumed.kimg - target) < 1e-9
    assert not list(run.glob(".*.tmp-*"))


def tiny_trainer(folder, tmp_path, runtime: Runtime | None = None, extra=()) -> Trainer:
    config = build_config(overrides=[*TINY, *extra])
    ds = load_dataset(folder, resolution=16)
    import dataclasses

    config = dataclasses.replace(config, data=dataclasses.replace(config.data, resolution=16))
    run = tmp_path / "t"
    run.mkdir(exist_ok=True)
    return Trainer(config, ds, runtime or cpu_runtime(), run)


def test_nonfinite_steps_are_skipped_then_training_stops(folder, tmp_path):
    trainer = tiny_trainer(folder, tmp_path, extra=["train.max_bad_steps=3", "train.kimg=1"])
    nan = float("nan")
    trainer.ctx.loss = Loss(d=lambda r, f: (r.sum() + f.sum()) * nan, g=lambda f: f.sum() * nan)
    g_before = [p.detach().clone() for p in trainer.g_raw.parameters()]
    d_before = [p.detach().clone() for p in trainer.d_raw.parameters()]
    trainer.train_step()
    assert all(torch.equal(a, b) for a, b in zip(g_before, trainer.g_raw.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(d_before, trainer.d_raw.parameters()))
    assert all(s["step"].item() == 0 for s in trainer.opt_g.state.values())  # Adam's clock did not tick
    with pytest.raises(TrainingError, match="consecutive steps"):
        trainer.train(progress=False)
    assert not (trainer.run_dir / "train_state.json").exists()  # no snapshot of a diverged state


@pytest.mark.slow  # torch.compile on the CPU: ~40 s of compilation
def test_compile_and_bf16_autocast_on_cpu(folder, tmp_path):
    runtime = Runtime(device=torch.device("cpu"), precision="bf16", compile=True)
    trainer = tiny_trainer(folder, tmp_path, runtime, extra=["model.arch=mlp"])
    before = [p.detach().clone() for p in trainer.g_raw.parameters()]
    for _ in range(2):
        trainer.train_step()
    torch._dynamo.config.error_on_recompile = True  # steady state: static shapes, no recompiles
    try:
        for _ in range(3):
            stats = trainer.train_step()
    finally:
        torch._dynamo.config.error_on_recompile = False
    assert torch.isfinite(stats["loss_d"]) and torch.isfinite(stats["loss_g"])
    assert stats["bad_g"].item() == 0
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.g_raw.parameters()))


def test_class_balanced_and_empirical_sampling():
    labels = torch.tensor([0] * 90 + [1] * 10)
    images = torch.zeros(100, 1, 4, 4, dtype=torch.uint8)
    gen = torch.Generator().manual_seed(0)
    balanced = Batches(images, labels, 2, balanced=True, z_dim=4)
    _, y = balanced.real(4000, gen)
    assert abs(y.float().mean().item() - 0.5) < 0.05
    assert abs(balanced.latent(4000, gen)[1].float().mean().item() - 0.5) < 0.05
    empirical = Batches(images, labels, 2, balanced=False, z_dim=4)
    assert abs(empirical.real(4000, gen)[1].float().mean().item() - 0.1) < 0.03


def test_augmentations_keep_shape_and_respect_p():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 16, 16) * 2 - 1
    ops = parse_policy("translation,color,cutout")
    assert torch.equal(augment(x, ops, torch.tensor(0.0), gen), x)
    y = augment(x, ops, torch.tensor(1.0), gen)
    assert y.shape == x.shape and not torch.equal(x, y)
    cut = AUGMENTATIONS.get("cutout")(torch.ones(256, 1, 16, 16), gen)
    # a half-side square centred anywhere, clipped at the border: E[area] = (7/16)² ≈ 0.19 of a 16 px image
    assert 0.15 < (cut == 0).float().mean().item() < 0.23
    shifted = AUGMENTATIONS.get("translation")(torch.ones(256, 1, 16, 16), gen)
    assert (shifted == 0).any() and shifted.sum() > 0.7 * 256 * 256


def test_adaptive_augmentation_moves_p_toward_the_target(folder, tmp_path):
    trainer = tiny_trainer(folder, tmp_path, extra=["augment.p=0.5"])
    start = float(trainer.p)
    for step in range(1, 9):
        trainer.step = step
        trainer._adapt_augmentation(torch.tensor(1.0))  # D is always sure of reals → overfitting → more aug
    raised = float(trainer.p)
    for step in range(9, 17):
        trainer.step = step
        trainer._adapt_augmentation(torch.tensor(-1.0))
    assert raised > start and float(trainer.p) < raised


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT (Ctrl-C)"])
def test_sigterm_and_ctrl_c_save_a_snapshot_before_exiting(folder, tmp_path, sig):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "gansynth",
        "fit",
        str(folder),
        "--out",
        str(run),
        "--kimg",
        "1000",
        "--snapshot-kimg",
        "500",
        "--quiet",
        *[arg for s in TINY for arg in ("--set", s)],
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until((run / "log.jsonl").exists, timeout=120)
    assert not (run / "train_state.json").exists()  # no snapshot yet: the first one is 500 kimg away
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == 130, proc.stderr.read().decode()
    state = json.loads((run / "train_state.json").read_text())
    assert state["step"] > 0 and "--resume" in proc.stderr.read().decode()

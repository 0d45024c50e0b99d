"""CUDA paths: fit with bf16 autocast + torch.compile + channels_last, sampling, evaluation and export on the GPU.

Skipped without CUDA (CI has none); run on a GPU machine with ``python -m pytest -m gpu tests/test_gpu.py``.
"""

import json

import pytest
import torch
from conftest import make_folder

from gansynth.runtime import make_runtime
from gansynth.sampler import load_sampler
from gansynth.train.fit import fit

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

SMALL = [
    "model.g_width=64",
    "model.d_width=64",
    "model.z_dim=32",
    "model.embed_dim=32",
    "train.tick_kimg=0.64",
    "train.snapshot_kimg=1.28",
]


@pytest.fixture(scope="module")
def cuda_run(tmp_path_factory):
    """A short fit on CUDA with every machine default (bf16 autocast, torch.compile, channels_last, fused Adam)."""
    root = tmp_path_factory.mktemp("gpu")
    folder = make_folder(root / "imgs", {"a": 40, "b": 40, "c": 40}, size=32)
    result = fit(folder, out=root / "run", kimg=3.2, batch_size=64, overrides=SMALL, progress=False)
    return result


def test_runtime_defaults_on_cuda():
    runtime = make_runtime("auto")
    assert runtime.device.type == "cuda"
    assert runtime.precision in ("bf16", "fp16") and runtime.compile and runtime.channels_last
    assert torch.backends.cuda.matmul.allow_tf32


def test_fit_on_cuda_with_amp_and_compile(cuda_run):
    assert cuda_run.status == "done" and cuda_run.skipped_steps == 0
    config = json.loads((cuda_run.run_dir / "config.json").read_text())
    assert config["runtime"]["compile"] is None or config["runtime"]["compile"]
    log = [json.loads(line) for line in (cuda_run.run_dir / "log.jsonl").read_text().splitlines()]
    assert log and all(torch.isfinite(torch.tensor([r["loss_d"], r["loss_g"]])).all() for r in log)
    assert list((cuda_run.run_dir / "samples").glob("grid-*.png"))


def test_sampling_on_cuda_matches_cpu_closely(cuda_run):
    gpu = load_sampler(cuda_run.run_dir, device="cuda").generate(1, 8, seed=3)
    cpu = load_sampler(cuda_run.run_dir, device="cpu").generate(1, 8, seed=3)
    assert gpu.dtype == torch.uint8 and gpu.shape == cpu.shape
    # fp32 on both devices (TF32 matmuls on the GPU): images agree up to a few grey levels
    assert (gpu.int() - cpu.int()).abs().float().mean() < 2.0


def test_resume_on_cuda_continues(cuda_run):
    resumed = fit(cuda_run.run_dir.parent / "imgs", out=cuda_run.run_dir, kimg=4.48, resume=True, overrides=SMALL,
                  progress=False)  # fmt: skip
    assert resumed.step == cuda_run.step + 20


def test_steady_state_training_steps_never_sync_with_the_host(tmp_path):
    """No .item()/.cpu()/data-dependent shapes in the loop: CUDA's sync debug mode raises on any sync."""
    import dataclasses

    from gansynth.config import build_config
    from gansynth.data import load_dataset
    from gansynth.train.trainer import Trainer

    folder = make_folder(tmp_path / "imgs", {"a": 40, "b": 40}, size=32)
    config = build_config(overrides=SMALL)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, resolution=32))
    (tmp_path / "run").mkdir()
    trainer = Trainer(config, load_dataset(folder, resolution=32), make_runtime("cuda"), tmp_path / "run")
    for _ in range(3):  # compilation and cuDNN autotuning may sync
        trainer.train_step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(5):
            stats = trainer.train_step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(stats["loss_d"]).item()

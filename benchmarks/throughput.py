"""Training/sampling throughput of the default models, side by side in one process: eager fp32, eager bf16, compiled.

    python benchmarks/throughput.py                    # CPU: small widths, 16/32 px
    python benchmarks/throughput.py --device cuda      # GPU: default widths, 32/64 px, adds channels_last effects
    python benchmarks/throughput.py --json out.json

Training img/s counts real images shown to D per second (one D step + one G step per batch, as in `fit`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from gansynth.config import build_config
from gansynth.data.dataset import ImageDataset
from gansynth.runtime import Runtime, resolve_device
from gansynth.sampler import seed_noise, to_uint8
from gansynth.train.trainer import Trainer

VARIANTS = [("eager fp32", "fp32", False), ("eager bf16", "bf16", False), ("compiled fp32", "fp32", True),
            ("compiled bf16", "bf16", True)]


def fake_dataset(resolution: int, channels: int = 3, num_classes: int = 10, n: int = 2048) -> ImageDataset:
    gen = torch.Generator().manual_seed(0)
    return ImageDataset(name="bench", source="bench", fingerprint="0",
                        images=torch.randint(0, 256, (n, channels, resolution, resolution), dtype=torch.uint8,
                                             generator=gen),
                        labels=torch.arange(n) % num_classes, class_names=[str(i) for i in range(num_classes)])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_speed(overrides: list[str], dataset: ImageDataset, runtime: Runtime, warmup: int, steps: int) -> float:
    config = build_config(overrides=overrides)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, resolution=dataset.resolution),
                                 augment=dataclasses.replace(config.augment, enabled=True))
    trainer = Trainer(config, dataset, runtime, Path("/nonexistent"))
    for _ in range(warmup):
        trainer.train_step()
    sync(runtime.device)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    sync(runtime.device)
    return steps * config.train.batch_size / (time.perf_counter() - start)


@torch.no_grad()
def sample_speed(overrides: list[str], dataset: ImageDataset, runtime: Runtime, batch: int, reps: int) -> float:
    config = build_config(overrides=overrides)
    from gansynth.nn import build_networks

    g, _ = build_networks(config.model, dataset.resolution, dataset.channels, dataset.num_classes)
    g = runtime.compile_module(runtime.prepare(g).eval())
    z = seed_noise(range(batch), config.model.z_dim).to(runtime.device)
    y = (torch.arange(batch) % dataset.num_classes).to(runtime.device)
    for _ in range(2):
        with runtime.autocast():
            to_uint8(g(z, y))
    sync(runtime.device)
    start = time.perf_counter()
    for _ in range(reps):
        with runtime.autocast():
            to_uint8(g(z, y))
    return reps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    sizes = [(32, []), (64, [])] if gpu else [(16, ["model.g_width=64", "model.d_width=64"]),
                                              (32, ["model.g_width=64", "model.d_width=64"])]
    steps = args.steps or (50 if gpu else 10)
    rows = []
    for resolution, widths in sizes:
        dataset = fake_dataset(resolution)
        overrides = [*widths, "train.batch_size=64", f"runtime.device={args.device}"]
        for name, precision, compiled in VARIANTS:
            runtime = Runtime(device=device, precision=precision, compile=compiled)
            row = {"resolution": resolution, "variant": name,
                   "train_img_per_s": round(train_speed(overrides, dataset, runtime, 3, steps), 1),
                   "sample_img_per_s": round(sample_speed(overrides, dataset, runtime, 256, 5), 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    for resolution, _ in sizes:
        base = next(r for r in rows if r["resolution"] == resolution and r["variant"] == "eager fp32")
        for r in rows:
            if r["resolution"] == resolution:
                r["train_speedup_vs_eager_fp32"] = round(r["train_img_per_s"] / base["train_img_per_s"], 2)
    print(f"\n{'px':>4} {'variant':<15} {'train img/s':>12} {'×eager fp32':>12} {'sample img/s':>13}")
    for r in rows:
        print(f"{r['resolution']:>4} {r['variant']:<15} {r['train_img_per_s']:>12.1f} "
              f"{r['train_speedup_vs_eager_fp32']:>12.2f} {r['sample_img_per_s']:>13.1f}")
    if args.json:
        args.json.write_text(json.dumps({"device": str(device), "torch": torch.__version__, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

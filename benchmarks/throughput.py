"""Training/sampling throughput of the default models, side by side in one process: eager fp32, eager bf16, compiled.

    python benchmarks/throughput.py                    # CPU: narrow widths, 16/32 px
    python benchmarks/throughput.py --device cuda      # GPU: default widths (G 256, D 128), 32/64 px
    python benchmarks/throughput.py --device cuda --json out.json --profile prof.txt

Training img/s counts real images shown to D per second (one D step + one G step per batch of 64, as ``fit`` with
the default config does). Every variant runs through ``gansynth.runtime.make_runtime`` (TF32, cuDNN benchmark,
channels_last and fused Adam on CUDA), so the numbers are those of ``gansynth fit``. ``--profile`` writes the
``torch.profiler`` table of a few steady-state steps of every variant at the first resolution.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
import traceback
from pathlib import Path

import torch

from gansynth.config import build_config
from gansynth.data.dataset import ImageDataset
from gansynth.images import seed_noise, to_uint8
from gansynth.runtime import Runtime, make_runtime
from gansynth.train.trainer import Trainer

# (name, precision, compile, compile mode)
VARIANTS = [
    ("eager fp32", "fp32", False, "default"),
    ("eager bf16", "bf16", False, "default"),
    ("compiled bf16", "bf16", True, "default"),
    ("compiled bf16 + CUDA graphs", "bf16", True, "reduce-overhead"),
]


def fake_dataset(resolution: int, channels: int = 3, num_classes: int = 10, n: int = 2048) -> ImageDataset:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, channels, resolution, resolution), dtype=torch.uint8, generator=gen)
    labels, names = torch.arange(n) % num_classes, [str(i) for i in range(num_classes)]
    return ImageDataset(name="bench", source="bench", fingerprint="0", images=images, labels=labels, class_names=names)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_trainer(overrides: list[str], dataset: ImageDataset, runtime: Runtime) -> Trainer:
    config = build_config(overrides=overrides)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, resolution=dataset.resolution),
                                 augment=dataclasses.replace(config.augment, enabled=True))  # fmt: skip
    return Trainer(config, dataset, runtime, Path("/nonexistent"))


def train_speed(trainer: Trainer, warmup: int, steps: int) -> tuple[float, float]:
    """(img/s, seconds of warm-up incl. compilation)."""
    device = trainer.runtime.device
    start = time.perf_counter()
    for _ in range(warmup):
        trainer.train_step()
    sync(device)
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    sync(device)
    return steps * trainer.config.train.batch_size / (time.perf_counter() - start), warm


def profile_table(trainer: Trainer, steps: int = 5) -> str:
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if trainer.runtime.device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            trainer.train_step()
        sync(trainer.runtime.device)
    key = "cuda_time_total" if trainer.runtime.device.type == "cuda" else "cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=30)


@torch.no_grad()
def sample_speed(trainer: Trainer, batch: int, reps: int) -> float:
    """Sampling img/s of the (compiled when the variant compiles) EMA generator, uint8 on the host included."""
    runtime, m = trainer.runtime, trainer.config.model
    g = runtime.compile_module(trainer.ema)
    z = seed_noise(range(batch), m.z_dim).to(runtime.device)
    y = (torch.arange(batch) % trainer.dataset.num_classes).to(runtime.device)
    for _ in range(3):
        with runtime.autocast():
            to_uint8(g(z, y))
    sync(runtime.device)
    start = time.perf_counter()
    for _ in range(reps):
        with runtime.autocast():
            to_uint8(g(z, y))
    sync(runtime.device)
    return reps * batch / (time.perf_counter() - start)


def run_variant(args, resolution: int, widths: list[str], variant: tuple, gpu: bool) -> tuple[dict, Trainer | None]:
    name, precision, compiled, mode = variant
    dataset = fake_dataset(resolution)
    row = {"resolution": resolution, "variant": name}
    try:
        torch._dynamo.reset()
        runtime = make_runtime(args.device, precision, compiled, mode)
        trainer = make_trainer([*widths, "train.batch_size=64"], dataset, runtime)
        speed, warm = train_speed(trainer, args.warmup, args.steps)
        sampling = sample_speed(trainer, 1024 if gpu else 256, 10 if gpu else 3)
        row |= {"train_img_per_s": round(speed, 1), "warmup_s": round(warm, 1), "sample_img_per_s": round(sampling, 1)}
        if gpu:
            row["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            torch.cuda.reset_peak_memory_stats()
        return row, trainer
    except Exception as exc:  # a variant that fails (e.g. CUDA graphs) is reported, not fatal
        row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        traceback.print_exc()
        return row, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--resolutions", default=None, help="e.g. 32,64")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--profile", type=Path, default=None, help="write profiler tables here")
    args = parser.parse_args()
    gpu = make_runtime(args.device).device.type == "cuda"
    widths = [] if gpu else ["model.g_width=64", "model.d_width=64"]
    resolutions = [int(r) for r in (args.resolutions or ("32,64" if gpu else "16,32")).split(",")]
    args.steps = args.steps or (60 if gpu else 10)
    args.warmup = args.warmup or (15 if gpu else 3)
    variants = VARIANTS if gpu else VARIANTS[:3]
    rows, tables = [], []
    for resolution in resolutions:
        for variant in variants:
            row, trainer = run_variant(args, resolution, widths, variant, gpu)
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.profile and trainer is not None and resolution == resolutions[0]:
                tables.append(f"== {resolution} px, {row['variant']} ==\n{profile_table(trainer)}")
            del trainer
    for r in rows:
        base = next(b for b in rows if b["resolution"] == r["resolution"] and b["variant"] == "eager fp32")
        if "train_img_per_s" in r and "train_img_per_s" in base:
            r["train_speedup_vs_eager_fp32"] = round(r["train_img_per_s"] / base["train_img_per_s"], 2)
    device_name = torch.cuda.get_device_name() if gpu else "cpu"
    print(f"\ndevice: {device_name}, torch {torch.__version__}")
    print(f"{'px':>4} {'variant':<28} {'train img/s':>12} {'x eager fp32':>12} {'sample img/s':>13} {'warm-up s':>10}")
    for r in rows:
        if "error" in r:
            print(f"{r['resolution']:>4} {r['variant']:<28} failed: {r['error']}")
            continue
        print(
            f"{r['resolution']:>4} {r['variant']:<28} {r['train_img_per_s']:>12.1f} "
            f"{r['train_speedup_vs_eager_fp32']:>12.2f} {r['sample_img_per_s']:>13.1f} {r['warmup_s']:>10.1f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"device": device_name, "torch": torch.__version__, "rows": rows}, indent=1))
    if args.profile:
        args.profile.write_text("\n\n".join(tables))


if __name__ == "__main__":
    main()

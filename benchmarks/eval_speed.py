"""How long ``gansynth evaluate`` takes: N generated (an untrained generator) vs N real images, domain extractor.

Reproduces the evaluation-time numbers in benchmarks/README.md, e.g. on CIFAR-10's 10 000 test images at 32 px:

    tar xzf ../shared/data/cifar10-jpg.tar.gz -C /tmp
    python benchmarks/eval_speed.py /tmp/cifar10/test --num-samples 10000 --json /tmp/eval_speed.json

It builds an untrained run with the recipe's architecture (no training needed: speed does not depend on the
weights), uses a fresh cache, and times, in one process: decoding the real folder, training the domain
classifier (a cold cache only), generating the images, the first evaluation (real features computed) and a second
one (real features and classifier from the cache), which is what every later evaluation of a run costs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch


def make_untrained_run(run_dir: Path, recipe: str, dataset) -> Path:
    """A complete run directory whose generator is freshly initialised (as ``gansynth fit`` would start it)."""
    from gansynth.checkpoint import save_snapshot, write_run_header
    from gansynth.config import build_config
    from gansynth.nn import build_networks

    torch.manual_seed(0)
    config = build_config(recipe=recipe, overrides=[f"data.resolution={dataset.resolution}"])
    generator, discriminator = build_networks(
        config.model, dataset.resolution, dataset.channels, len(dataset.class_names)
    )
    write_run_header(run_dir, config.to_dict(), dataset.info())
    generator.eval()
    networks = {
        "generator_ema": generator.state_dict(),
        "generator": generator.state_dict(),
        "discriminator": discriminator.state_dict(),
    }
    save_snapshot(run_dir, networks, {"step": 0, "kimg": 0.0})
    return run_dir


def timed(label: str, timings: dict, fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    timings[label] = round(time.perf_counter() - start, 2)
    print(f"{label}: {timings[label]:.1f} s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("real", help="real image folder <root>/<class>/*.jpg (or 'digits')")
    parser.add_argument("--num-samples", type=int, default=10_000, help="generated images (balanced)")
    parser.add_argument("--recipe", default="cifar10", help="architecture of the untrained generator")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--feature-extractor", default="domain")
    parser.add_argument("--weights", default=None, help="extractor weights file (inception/dinov2/clip)")
    parser.add_argument("--json", type=Path, default=None, help="write the timings and the record here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gansynth-eval-speed-"))
    os.environ["GANSYNTH_CACHE"] = str(work / "cache")  # cold cache: nothing from earlier runs is reused
    from gansynth.data import load_dataset
    from gansynth.metrics import evaluate
    from gansynth.metrics.domain import domain_classifier
    from gansynth.metrics.evaluate import generate_balanced
    from gansynth.runtime import make_runtime
    from gansynth.sampler import load_sampler

    timings: dict[str, float] = {}
    real = timed("decode real folder", timings, load_dataset, args.real)
    run = make_untrained_run(work / "runs" / "untrained", args.recipe, real)
    runtime = make_runtime(args.device, "fp32", compile=False)
    domain = timed("train domain classifier (cold cache only)", timings, domain_classifier, real, runtime)
    sampler = load_sampler(run, device=runtime.device)
    timed(f"generate {args.num_samples} images", timings, generate_balanced, sampler, args.num_samples)
    common = dict(
        run=run,
        data=args.real,
        num_samples=args.num_samples,
        feature_extractor=args.feature_extractor,
        weights=args.weights,
        device=args.device,
        progress=False,
    )
    first = timed("evaluate, first (real features computed)", timings, evaluate, **common)
    record = timed("evaluate, again (real features cached)", timings, evaluate, **common)
    # the part after generation: classifier/feature loading, features, metric math (the record's own clock)
    timings["of which metrics, first"] = first["protocol"]["elapsed_s"]
    timings["of which metrics, again"] = record["protocol"]["elapsed_s"]
    result = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        "device": str(runtime.device) + (f" ({torch.cuda.get_device_name()})" if runtime.device.type == "cuda" else ""),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "real": args.real,
        "num_real": len(real),
        "num_generated": record["protocol"]["num_generated"],
        "resolution": real.resolution,
        "recipe": args.recipe,
        "feature_extractor": record["protocol"]["feature_extractor"],
        "domain_heldout_accuracy": domain.heldout_accuracy,
        "domain_classifier_epochs": domain.classifier.config.epochs,
        "timings_s": timings,
        "record": {k: record[k] for k in ("fid", "kid", "precision", "recall", "density", "coverage")},
    }
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

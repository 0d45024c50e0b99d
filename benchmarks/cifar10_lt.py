"""CIFAR-10-LT (imbalance ratio 100): does a GAN trained on the long-tailed set fix the tail better than rebalancing?

    python benchmarks/cifar10_lt.py                   # full GPU settings (hours on one GPU)
    python benchmarks/cifar10_lt.py --cpu-reduced     # ~15 min on 2 CPU cores; weak numbers, documented below
    python benchmarks/cifar10_lt.py --run RUN         # reuse a GAN run trained on the LT training folder

Data: ``../shared/data/cifar10-jpg.tar.gz`` (CIFAR-10 as JPEGs) is extracted once into ``$GANSYNTH_CACHE/cifar10-jpg``
(default ``/tmp/gansynth-cache``), never into the repository. The long-tailed training set is the standard
construction n_i = ⌊5000 · 100^(−i/9)⌋ for class i in CIFAR-10 order (airplane 5000 ... truck 50; 12 406 images),
each class a random subset of its 5000 training images drawn with a fixed seed (``--data-seed``, 0), linked (not
copied) into ``OUT/data/train``. The test set is the full CIFAR-10 test set (10 000 images); ``--cpu-reduced`` uses
a stratified 200-per-class subset of it.

Pipeline: ``gansynth.fit`` on the LT training folder → ``gansynth.benchmark`` with ``run=`` (the export tops every
class up to 5000 images; the synthetic-only arm uses 5000 per class) → arms real (cross-entropy), real+synthetic,
synthetic-only (CAS) and rebalanced (class-balanced resampling), seeds 0..K-1, equal optimizer steps per arm.
Published reference points (ResNet-32, 200 epochs; Cao et al. 2019, Ren et al. 2020): cross-entropy 70.4%,
Balanced Softmax 77.5% accuracy on the balanced test set (accuracy = balanced accuracy there).

Profiles (the numbers in benchmarks/README.md name the profile):
- full (default, GPU): recipe ``cifar10`` (BigGAN 256/128, DiffAugment) for ``--kimg`` 20000; classifier
  ``resnet18`` for 200 epochs of the real set (19 400 steps of 128), 3 seeds, the full test set.
- ``--cpu-reduced``: GAN BigGAN 64/64 (z 64, one D step per G step, EMA from the start) for 12 kimg; classifier
  ``test_efficientnet`` for 2 epochs of the real set (194 steps of 128), 3 seeds, 2 000 test images. A 12-kimg
  GAN on a CPU makes poor images, so this profile checks the pipeline end to end; it cannot show a real gain.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TARBALL = REPO.parent / "shared" / "data" / "cifar10-jpg.tar.gz"
CACHE = Path(os.environ.get("GANSYNTH_CACHE", "/tmp/gansynth-cache"))
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")  # CIFAR order
TRAIN_PER_CLASS = 5000
IMBALANCE = 100


@dataclass(frozen=True)
class Profile:
    """GAN and classifier settings of one benchmark size."""

    recipe: str
    kimg: float
    model: str
    epochs: int
    seeds: int
    test_per_class: int | None  # None: the whole test set
    overrides: tuple[str, ...] = field(default=())


FULL = Profile(recipe="cifar10", kimg=20000, model="resnet18", epochs=200, seeds=3, test_per_class=None)
CPU_REDUCED = Profile(
    recipe="cifar10", kimg=12, model="test_efficientnet", epochs=2, seeds=3, test_per_class=200,
    overrides=(
        "model.g_width=64", "model.d_width=64", "model.z_dim=64", "model.embed_dim=64", "train.d_steps=1",
        "train.ema_start_kimg=0", "train.ema_kimg=2", "train.tick_kimg=2", "train.snapshot_kimg=6",
        "eval.every_kimg=0",
    ),
)  # fmt: skip


def extract_cifar(tarball: Path = TARBALL, cache: Path = CACHE) -> Path:
    """``<cache>/cifar10-jpg/cifar10`` with ``train/`` and ``test/`` class folders, extracted once."""
    root = cache / "cifar10-jpg"
    done = root / ".complete"
    if not done.exists():
        if not tarball.is_file():
            raise SystemExit(f"error: {tarball} not found (pass --tarball)")
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as archive:
            archive.extractall(root, filter="data")
        done.write_text("ok\n")
    return root / "cifar10"


def long_tail_counts(n_max: int = TRAIN_PER_CLASS, imbalance: float = IMBALANCE, k: int = len(CLASSES)) -> list[int]:
    """n_i = ⌊n_max · imbalance^(−i/(k−1))⌋: 5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50 for ρ = 100."""
    return [math.floor(n_max * imbalance ** (-i / (k - 1))) for i in range(k)]


def link_subset(source: Path, target: Path, counts: dict[str, int], seed: int) -> Path:
    """``target/<class>/`` holding symlinks to ``counts[class]`` files of ``source/<class>/`` chosen with ``seed``."""
    rng = np.random.default_rng(seed)
    for name, count in counts.items():
        files = sorted((source / name).iterdir())
        chosen = sorted(rng.permutation(len(files))[:count].tolist())
        folder = target / name
        folder.mkdir(parents=True, exist_ok=True)
        wanted = {files[i].name for i in chosen}
        for stale in folder.iterdir():
            if stale.name not in wanted:
                stale.unlink()
        for i in chosen:
            link = folder / files[i].name
            if not link.exists():
                link.symlink_to(files[i].resolve())
    return target


def train_gan(train_dir: Path, out: Path, profile: Profile, kimg: float | None) -> Path:
    """Fit (or resume) the GAN of ``profile`` on ``train_dir`` into ``out``."""
    from gansynth.train.fit import fit

    resume = (out / "train_state.json").exists()
    fit(
        train_dir, out=out, recipe=profile.recipe, resume=resume, overrides=list(profile.overrides),
        kimg=kimg or profile.kimg,
    )  # fmt: skip
    return out


def run_suite(name: str, train_dir: Path, test_dir: Path, args: argparse.Namespace, **benchmark_options) -> None:
    """GAN (unless ``--run``) → benchmark → summary, wall time and an optional JSON copy of the record."""
    from gansynth.benchmark import benchmark
    from gansynth.runtime import make_runtime, set_threads
    from gansynth.terminal import print_summary

    profile = CPU_REDUCED if args.cpu_reduced else FULL
    set_threads(args.threads)
    started = time.perf_counter()
    run = args.run or train_gan(train_dir, args.out / "run", profile, args.kimg)
    fitted = time.perf_counter() - started
    options = {"model": profile.model, "epochs": profile.epochs, "seeds": profile.seeds, **benchmark_options}
    options.update({k: v for k, v in (("model", args.model), ("epochs", args.epochs), ("seeds", args.seeds)) if v})
    if args.arms:
        options["arms"] = args.arms
    if args.folds is not None:
        options["validation_folds"] = args.folds
    if args.budget is not None:
        options["budget"] = args.budget
    if args.mixing:
        from gansynth.mixing import parse_mixing

        options["mixings"] = [parse_mixing(text) for text in args.mixing]
    options["workers"] = args.workers if args.workers == "auto" else int(args.workers)
    result = benchmark(train_dir, test=test_dir, run=run, out=args.out / "benchmark",
                       runtime=make_runtime(args.device), **options)  # fmt: skip
    wall = time.perf_counter() - started
    print_summary(result.record, report_dir=result.out)
    print(f"{name} ({'cpu-reduced' if args.cpu_reduced else 'full'}): GAN {fitted:.0f} s, total {wall:.0f} s")
    if args.json is not None:
        record = {**result.record, "suite": name, "profile": "cpu-reduced" if args.cpu_reduced else "full",
                  "suite_wall_seconds": wall, "gan_seconds": fitted}  # fmt: skip
        args.json.write_text(json.dumps(record, indent=2) + "\n")


def parser(description: str, default_out: Path) -> argparse.ArgumentParser:
    """The options every CIFAR-10 suite shares."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu-reduced", action="store_true", help="small GAN / classifier / test subset (see above)")
    p.add_argument("--out", type=Path, default=default_out, help=f"work folder (default {default_out})")
    p.add_argument("--run", type=Path, default=None, help="a GAN run trained on OUT/data/train (skips the fit)")
    p.add_argument("--kimg", type=float, default=None, help="GAN training length (default: the profile's)")
    p.add_argument("--model", default=None, help="classifier (default: the profile's)")
    p.add_argument("--epochs", type=int, default=None, help="classifier epochs of the real set (default: profile)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per arm (default: the profile's)")
    p.add_argument("--arms", default=None, help="comma-separated benchmark arms, e.g. adding mixup (default: all)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is best on a shared CPU)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the class subsets")
    p.add_argument("--folds", type=int, default=None, help="validation folds of the choices (default: the benchmark's)")
    p.add_argument("--workers", default="1", help="classifier processes (auto: one per free core)")
    p.add_argument("--budget", default=None, choices=["auto", "fixed"], help="classifier steps (default: auto)")
    p.add_argument(
        "--mixing", action="append", default=None,
        help="a candidate mixing of real+synthetic, repeatable, as gansynth benchmark --mixing (default: built-in set)",
    )  # fmt: skip
    p.add_argument("--tarball", type=Path, default=TARBALL)
    p.add_argument("--json", type=Path, default=None, help="also write the record here")
    return p


def test_folder(cifar: Path, out: Path, per_class: int | None, seed: int) -> Path:
    """The full CIFAR-10 test folder, or a stratified ``per_class`` subset of it linked under ``out``."""
    if per_class is None:
        return cifar / "test"
    return link_subset(cifar / "test", out / "data" / "test", dict.fromkeys(CLASSES, per_class), seed)


def main() -> None:
    args = parser(__doc__, CACHE / "bench" / "cifar10-lt").parse_args()
    cifar = extract_cifar(args.tarball)
    counts = dict(zip(CLASSES, long_tail_counts()))
    train_dir = link_subset(cifar / "train", args.out / "data" / "train", counts, args.data_seed)
    profile = CPU_REDUCED if args.cpu_reduced else FULL
    test_dir = test_folder(cifar, args.out, profile.test_per_class, args.data_seed)
    run_suite("cifar10-lt", train_dir, test_dir, args)


if __name__ == "__main__":
    main()

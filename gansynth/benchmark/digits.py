"""The digits benchmark: a clean train/test split of scikit-learn's digits → GAN on the train part → benchmark.

Used by ``gansynth demo`` and ``benchmarks/digits_suite.py``. The GAN only ever sees the training part, so the
synthetic images carry no information about the test images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console

from gansynth.benchmark.data import held_out_split
from gansynth.benchmark.run import BenchmarkResult, benchmark
from gansynth.benchmark.spec import DEFAULT_EPOCHS, DEFAULT_MODEL, DEFAULT_SEEDS
from gansynth.data import ImageDataset, load_dataset
from gansynth.rundir import TRAIN_STATE_JSON
from gansynth.runtime import Runtime

DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


def write_image_folder(dataset: ImageDataset, root: str | Path) -> Path:
    """Write ``dataset`` as lossless PNGs ``root/<class>/<index>.png`` (index into the dataset); returns ``root``."""
    root = Path(root)
    for name in dataset.class_names:
        (root / name).mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(dataset.images.numpy(), dataset.labels.tolist())):
        array = image[0] if image.shape[0] == 1 else np.transpose(image, (1, 2, 0))
        path = root / dataset.class_names[label] / f"{i:05d}.png"
        if not path.exists():
            Image.fromarray(array).save(path)
    return root


def prepare_digits_split(
    out: str | Path, test_fraction: float = DIGITS_TEST_FRACTION, seed: int = DIGITS_SPLIT_SEED
) -> tuple[Path, Path]:
    """Write the digits (16 px) as ``out/train`` and ``out/test`` class folders, split stratified; returns both."""
    digits = load_dataset("digits")
    train, test = held_out_split(digits, test_fraction, seed)
    out = Path(out)
    train_dir = write_image_folder(digits.subset(train), out / "train")
    return train_dir, write_image_folder(digits.subset(test), out / "test")


def run_digits_benchmark(
    out: str | Path,
    run: str | Path | None = None,
    *,
    model: str = DEFAULT_MODEL,
    epochs: int = DEFAULT_EPOCHS,
    seeds: int = DEFAULT_SEEDS,
    kimg: float | None = None,
    runtime: Runtime | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> BenchmarkResult:
    """Benchmark a digits GAN: real vs real+synthetic vs synthetic vs rebalanced, on a clean held-out split.

    Args:
        out: folder for ``data/{train,test}``, ``run/`` (when a GAN is trained here) and ``benchmark/``.
        run: a run trained on ``out/data/train`` (e.g. by the demo); None trains one with the digits recipe.
        model / epochs / seeds: classifier settings of :func:`gansynth.benchmark.benchmark`.
        kimg: GAN training length when a run is trained here (None: the digits recipe's).
        runtime: classifier device settings (None: automatic).
        progress: progress bars and per-run lines on stderr.
        console: where progress goes.

    Returns:
        The benchmark result; ``result.verdict`` is the verdict line.
    """
    out = Path(out)
    train_dir, test_dir = prepare_digits_split(out / "data")
    if run is None:
        from gansynth.train.fit import fit

        run = out / "run"
        resume = (run / TRAIN_STATE_JSON).exists()
        fit(train_dir, out=run, recipe="digits", resume=resume, progress=progress, console=console, kimg=kimg)
    return benchmark(
        train_dir,
        test=test_dir,
        run=run,
        model=model,
        epochs=epochs,
        seeds=seeds,
        out=out / "benchmark",
        runtime=runtime,
        progress=progress,
        flip=False,
        console=console,
    )

"""fonts → digits: does CycleGAN translation make printed digits a better training set for handwritten ones?

Writes the built-in pair as folders (printed digits, labeled; scikit-learn's digits split into a training part —
domain B, labels unused — and a held-out test part the translation never sees), fits ``gansynth translate`` on
them, exports every printed digit translated, then trains the same small classifier on the raw and on the
translated printed digits and scores both on the held-out real digits. Prints one JSON line.

The test digits choose nothing: options are compared on ``val_*`` — the same classifiers scored on domain B's own
training images, whose labels the translation never uses (it saw those images, unlabeled).

    python benchmarks/translate_fonts_digits.py [--kimg 12] [--out /tmp/translate-bench]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from gansynth.classify import ClassifierConfig, train_classifier
from gansynth.data import load_dataset
from gansynth.translate import export, fit, load_translator, write_fonts_digits

CLASSIFIER = ClassifierConfig(model="test_efficientnet", epochs=10, batch_size=64, flip=False)


def accuracy(train, scored: tuple, seed: int, epochs: int = CLASSIFIER.epochs) -> tuple[float, ...]:
    """Accuracy on each of the ``scored`` ImageDatasets of the classifier trained on ``train``."""
    from dataclasses import replace

    config = replace(CLASSIFIER, seed=seed, epochs=epochs)
    net = train_classifier(train.images, train.labels, train.num_classes, config)
    return tuple(float((net.predict(d.images) == d.labels).float().mean()) for d in scored)


def run(out: Path, kimg: float, g_width: int, seeds: int, threads: int, overrides: tuple[str, ...] = (),
        epochs: int = CLASSIFIER.epochs) -> dict:  # fmt: skip
    """Fit, export, classify; the measured numbers."""
    torch.set_num_threads(threads)
    fonts, digits, digits_test = write_fonts_digits(out / "data")
    started = time.perf_counter()
    result = fit(fonts, digits, out=out / "run", kimg=kimg, g_width=g_width, d_width=g_width, device="cpu",
        overrides=overrides,
                 progress=False, resume=(out / "run" / "train_state.json").exists())  # fmt: skip
    fit_s = time.perf_counter() - started
    exported = export(out / "run", out / "translated", progress=False)
    raw, test = load_dataset(fonts, 16), load_dataset(digits_test, 16)
    val = load_dataset(digits, 16)  # domain B's own images, their labels used only here: for choosing options
    translated = load_dataset(exported.out / "images", 16)
    raw_val, raw_acc = zip(*(accuracy(raw, (val, test), s, epochs) for s in range(seeds)))
    translated_val, translated_acc = zip(*(accuracy(translated, (val, test), s, epochs) for s in range(seeds)))
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {
        "kimg": result.kimg,
        "fit_seconds": round(fit_s, 1),
        "img_per_s": round(result.images_per_second, 1),
        "cycle_l1_train": result.last_tick.get("cycle_l1"),
        "cycle_error_levels": round(load_translator(out / "run").cycle_error(raw.images), 2),
        "raw_accuracy": [round(a, 4) for a in raw_acc],
        "translated_accuracy": [round(a, 4) for a in translated_acc],
        "gain_points": round(100 * (mean(translated_acc) - mean(raw_acc)), 1),
        "paired_gain_points": [round(100 * (t - r), 1) for t, r in zip(translated_acc, raw_acc)],
        "val_raw_accuracy": [round(a, 4) for a in raw_val],
        "val_translated_accuracy": [round(a, 4) for a in translated_val],
        "val_gain_points": round(100 * (mean(translated_val) - mean(raw_val)), 1),
        "test_images": len(test),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/translate-bench"))
    parser.add_argument("--kimg", type=float, default=12.0)
    parser.add_argument("--g-width", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=CLASSIFIER.epochs, help="classifier epochs (both arms)")
    parser.add_argument("--set", action="append", default=[], help="translate config override, e.g. train.pool_size=0")
    args = parser.parse_args()
    print(json.dumps(run(args.out, args.kimg, args.g_width, args.seeds, args.threads, tuple(args.set), args.epochs)))


if __name__ == "__main__":
    main()

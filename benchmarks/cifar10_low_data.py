"""CIFAR-10 with few images per class (10%: 500, or 1%: 50): does a GAN trained on the small set help?

    python benchmarks/cifar10_low_data.py                   # full GPU settings, 10% (500 per class)
    python benchmarks/cifar10_low_data.py --cpu-reduced     # small GAN / classifier / test subset, CPU
    python benchmarks/cifar10_low_data.py --per-class 50 --cpu-reduced --full-test   # CIFAR-10 1%, CPU
    python benchmarks/cifar10_low_data.py --ratio-sweep 0.5,1,2,4

Data: as ``cifar10_lt.py`` (extracted once into ``$GANSYNTH_CACHE/cifar10-jpg``); the training set is a random
``--per-class``-image subset of each class (default 500; seed ``--data-seed``), linked into ``OUT/data/train``; the
test set is the full CIFAR-10 test set (``--cpu-reduced``: 200 per class, unless ``--full-test``). The GAN trains
on the training images only; the real classes are balanced, so real+synthetic adds ``--per-class`` synthetic
images per class (1×) and the synthetic-only arm uses as many; ``--ratio-sweep`` adds arms with ratio ×
``--per-class`` per class. ``--arms`` picks the classifier arms (default: all). Profiles: see ``cifar10_lt.py``.
"""

from __future__ import annotations

from cifar10_lt import CACHE, CLASSES, CPU_REDUCED, FULL, extract_cifar, link_subset, parser, run_suite, test_folder

PER_CLASS = 500  # 10% of CIFAR-10's 5 000 training images per class; CIFAR-10 1% is --per-class 50


def main() -> None:
    p = parser(__doc__, CACHE / "bench" / "cifar10-low-data")
    p.add_argument("--per-class", type=int, default=PER_CLASS, help="training images per class (1%%: 50)")
    p.add_argument("--full-test", action="store_true", help="the full 10 000-image test set with --cpu-reduced")
    p.add_argument("--ratio-sweep", default=None, help="e.g. 0.5,1,2,4 (synthetic per class ÷ --per-class)")
    args = p.parse_args()
    if not 2 <= args.per_class <= 5000:
        p.error(f"--per-class must be in 2..5000, got {args.per_class}")
    cifar = extract_cifar(args.tarball)
    train_dir = link_subset(cifar / "train", args.out / "data" / "train", dict.fromkeys(CLASSES, args.per_class),
                            args.data_seed)  # fmt: skip
    profile = CPU_REDUCED if args.cpu_reduced else FULL
    test_dir = test_folder(cifar, args.out, None if args.full_test else profile.test_per_class, args.data_seed)
    options = {"ratio_sweep": [float(r) for r in args.ratio_sweep.split(",")] if args.ratio_sweep else None}
    run_suite("cifar10-low-data", train_dir, test_dir, args, **options)


if __name__ == "__main__":
    main()

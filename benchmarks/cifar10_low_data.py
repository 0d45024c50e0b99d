"""CIFAR-10 with 10% of each class (500 images per class): does a GAN trained on the small set help?

    python benchmarks/cifar10_low_data.py                   # full GPU settings
    python benchmarks/cifar10_low_data.py --cpu-reduced     # small GAN / classifier / test subset, CPU
    python benchmarks/cifar10_low_data.py --ratio-sweep 0.5,1,2,4

Data: as ``cifar10_lt.py`` (extracted once into ``$GANSYNTH_CACHE/cifar10-jpg``); the training set is a random
500-image subset of each class (seed ``--data-seed``), linked into ``OUT/data/train``; the test set is the full
CIFAR-10 test set (``--cpu-reduced``: 200 per class). The GAN trains on the 5 000 training images only; the real
classes are balanced, so real+synthetic adds 500 synthetic images per class (1×) and the synthetic-only arm uses
500 per class; ``--ratio-sweep`` adds arms with ratio × 500 per class. Profiles: see ``cifar10_lt.py``.
"""

from __future__ import annotations

from cifar10_lt import CACHE, CLASSES, CPU_REDUCED, FULL, extract_cifar, link_subset, parser, run_suite, test_folder

PER_CLASS = 500  # 10% of CIFAR-10's 5 000 training images per class


def main() -> None:
    p = parser(__doc__, CACHE / "bench" / "cifar10-low-data")
    p.add_argument("--ratio-sweep", default=None, help="e.g. 0.5,1,2,4 (synthetic per class ÷ 500)")
    args = p.parse_args()
    cifar = extract_cifar(args.tarball)
    train_dir = link_subset(cifar / "train", args.out / "data" / "train", dict.fromkeys(CLASSES, PER_CLASS),
                            args.data_seed)  # fmt: skip
    profile = CPU_REDUCED if args.cpu_reduced else FULL
    test_dir = test_folder(cifar, args.out, profile.test_per_class, args.data_seed)
    ratios = [float(r) for r in args.ratio_sweep.split(",")] if args.ratio_sweep else None
    run_suite("cifar10-low-data", train_dir, test_dir, args, ratio_sweep=ratios)


if __name__ == "__main__":
    main()

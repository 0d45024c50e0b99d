"""Full CIFAR-10: classification accuracy score (synthetic-only training) and real+synthetic, tested on real.

    python benchmarks/cifar10_cas.py                   # full GPU settings
    python benchmarks/cifar10_cas.py --cpu-reduced     # small GAN / classifier / test subset, CPU

Data: as ``cifar10_lt.py``; the training set is all 50 000 CIFAR-10 training images, the test set the full test
set (``--cpu-reduced``: 200 per class). The GAN trains on the training set; the synthetic-only arm (CAS) trains on
5 000 generated images per class, as many as the real set, and real+synthetic adds 5 000 per class (1×). Arms:
real, real+synthetic, synthetic (rebalancing is moot on balanced data). Published anchors (CAS, ResNet
classifiers): BigGAN 71.9%, projection cGAN 76.4%, real data 92.6%. Profiles: see ``cifar10_lt.py``.
"""

from __future__ import annotations

from cifar10_lt import CACHE, CPU_REDUCED, FULL, extract_cifar, parser, run_suite, test_folder

ARMS = ("real", "real+synthetic", "synthetic")


def main() -> None:
    args = parser(__doc__, CACHE / "bench" / "cifar10-cas").parse_args()
    cifar = extract_cifar(args.tarball)
    profile = CPU_REDUCED if args.cpu_reduced else FULL
    test_dir = test_folder(cifar, args.out, profile.test_per_class, args.data_seed)
    run_suite("cifar10-cas", cifar / "train", test_dir, args, arms=ARMS)


if __name__ == "__main__":
    main()

"""`gansynth fit digits` with no other option: wall time, training img/s, GAN-test accuracy and `gansynth evaluate`'s
metrics (domain extractor: precision, recall, coverage, label fidelity, collapse alarms) on this machine.

    python benchmarks/digits_fit.py --json /tmp/digits_fit.json

GAN-test accuracy (as in tests/test_learning.py): a logistic regression trained on the 1 797 real 8×8 digits labels
100 generated samples per class (the generator's 16 px output average-pooled back to 8×8); the number is the share
recognised as the requested class, per class and overall. The run goes to a scratch folder with a cold cache.
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
import torch.nn.functional as F

SAMPLES_PER_CLASS = 100
SEED = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    parser.add_argument("overrides", nargs="*", help="section.key=value on top of the recipe (none: the default fit)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gansynth-digits-fit-"))
    os.environ["GANSYNTH_CACHE"] = str(work / "cache")
    from sklearn.linear_model import LogisticRegression

    from gansynth.data.builtin import digits_raw
    from gansynth.metrics import evaluate
    from gansynth.sampler import load_sampler
    from gansynth.train.fit import fit

    start = time.perf_counter()
    result = fit("digits", out=work / "runs" / "digits", progress=False, overrides=args.overrides)
    wall = time.perf_counter() - start
    log = [json.loads(line) for line in (result.run_dir / "log.jsonl").read_text().splitlines()]
    rates = [row["img_per_s"] for row in log if "img_per_s" in row]

    raw, labels = digits_raw()
    classifier = LogisticRegression(max_iter=3000).fit(raw.reshape(len(raw), -1) / 255.0, labels)
    sampler = load_sampler(result.run_dir)
    per_class = {}
    for c in range(10):
        images = sampler.generate(c, SAMPLES_PER_CLASS, seed=SEED)
        small = F.adaptive_avg_pool2d(images.float(), 8).reshape(len(images), -1).numpy() / 255.0
        per_class[str(c)] = float((classifier.predict(small) == c).mean())
    record = evaluate(result.run_dir, feature_extractor="domain", progress=False)
    out = {
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "overrides": args.overrides,
        "kimg": result.kimg,
        "wall_s": round(wall, 1),
        "train_img_per_s_median": sorted(rates)[len(rates) // 2] if rates else None,
        "gan_test_accuracy": sum(per_class.values()) / len(per_class),
        "gan_test_accuracy_worst_class": min(per_class.values()),
        "gan_test_accuracy_per_class": per_class,
        "precision": record["precision"],
        "recall": record["recall"],
        "coverage": record["coverage"],
        "label_fidelity": record["label_fidelity"],
        "fid_domain": record["fid"],
        "alarms": len(record["alarms"]),
        "precision_mode": json.loads((result.run_dir / "config.json").read_text())["runtime"]["precision"],
    }
    print(json.dumps(out, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""A new user's first fit: `gansynth fit FOLDER` with no option on ~2 900 grayscale 28×28 images in 10 imbalanced
classes, then `gansynth export` (its default filter, and `--filter none`: the generator itself), then a classifier
trained on the real images labels the exported images.

    python benchmarks/user_folder_fit.py --work /tmp/bench/user [--per-class 200] [--json out.json]

The folder is made by benchmarks/make_user_folder.py (digits at 28 px, ρ = 10). The classifier is scikit-learn's
SVC (RBF) on the real images' pixels (5-fold held-out accuracy reported), so it is independent of gansynth.
Prints the plan lines of the fit, its wall time, the exported image size and the per-class recognition rate.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_user_folder import make  # noqa: E402


def load(folder: Path) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    files = sorted(p for p in folder.rglob("*.png"))
    images = [np.asarray(Image.open(p).convert("L"), dtype=np.float32) / 255.0 for p in files]
    labels = np.array([int(p.parent.name) for p in files])
    return np.stack([im.reshape(-1) for im in images]), labels, images[0].shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/gansynth-cache/bench/user"))
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--json", default=None)
    parser.add_argument("fit_args", nargs="*", help="extra `gansynth fit` arguments (none: the new user's command)")
    args = parser.parse_args()
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import SVC

    data, run, out = args.work / "images", args.work / "run", args.work / "synthetic"
    if not data.is_dir():
        make(data)
    shutil.rmtree(run, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    fit = subprocess.run(
        [sys.executable, "-m", "gansynth", "fit", str(data), "--out", str(run), "--quiet", *args.fit_args],
        capture_output=True,
        text=True,
        check=True,
    )
    fit_s = time.perf_counter() - start
    print(fit.stderr, flush=True)
    raw_out = args.work / "synthetic-unfiltered"
    shutil.rmtree(raw_out, ignore_errors=True)
    export = [sys.executable, "-m", "gansynth", "export", str(run), "--per-class", str(args.per_class)]
    subprocess.run([*export, "--out", str(out)], capture_output=True, check=True)  # the new user's command
    subprocess.run([*export, "--out", str(raw_out), "--filter", "none"], capture_output=True, check=True)
    x, y, _ = load(data)
    classifier = SVC(gamma="scale")
    held_out = float(np.mean(cross_val_score(classifier, x, y, cv=5)))
    classifier.fit(x, y)

    def recognized(folder: Path) -> tuple[dict[str, float], tuple[int, int]]:
        gx, gy, size = load(folder / "images")
        predicted = classifier.predict(gx)
        return {str(k): round(float(np.mean(predicted[gy == k] == k)), 3) for k in sorted(set(gy.tolist()))}, size

    per_class, size = recognized(out)  # the default export (filtered: wrong labels and near-duplicates dropped)
    per_class_raw, _ = recognized(raw_out)  # the generator itself
    config = json.loads((run / "config.json").read_text())
    row = {
        "fit_s": round(fit_s),
        "plan": config["plan"],
        "widths": [config["model"]["g_width"], config["model"]["d_width"]],
        "kimg": config["train"]["kimg"],
        "trained_px": config["data"]["resolution"],
        "exported_px": list(size),
        "classifier_held_out_accuracy": round(held_out, 3),
        "recognized_per_class": per_class,
        "recognized_min": min(per_class.values()),
        "unfiltered_recognized_per_class": per_class_raw,
        "unfiltered_recognized_min": min(per_class_raw.values()),
    }
    print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()

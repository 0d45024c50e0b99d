"""Fit throughput alone and beside a neighbour, with torch's default threads ("before") and gansynth's ("after").

    python benchmarks/threads_neighbour.py [--kimg 8] [--json out.json]

A short digits fit (the digits recipe, ``--kimg K``) runs in three settings: alone; beside a busy single-threaded
process (a Python spin loop); beside another torch job (matrix products with torch's default threads, as a second
user's training would). "before" starts the fit with torch already imported and its default thread count (one per
core); "after" is the CLI as shipped (threads = the cores free when the fit starts).
Prints one table row per setting: img/s before, after.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

NEIGHBOURS = {
    "alone": None,
    "busy single-threaded process": "while True: pass",
    "another torch job": (
        "import torch\nx = torch.randn(512, 512)\nwhile True:\n    for _ in range(50): x = torch.tanh(x @ x / 512)\n"
    ),
}
BEFORE = "import torch, sys; torch.get_num_threads(); from gansynth.cli import main; main(sys.argv[1:])"


def fit_speed(mode: str, kimg: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        args = ["fit", "digits", "--kimg", str(kimg), "--out", f"{tmp}/run", "--quiet", "--snapshot-kimg", "1000"]
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
        env.pop("GANSYNTH_THREADS", None)
        cmd = [sys.executable, "-c", BEFORE, *args] if mode == "before" else [sys.executable, "-m", "gansynth", *args]
        if mode == "before":  # torch's default: one thread per core, whatever is free
            env["GANSYNTH_THREADS"] = str(os.cpu_count())
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return float(re.search(r"done: .*?([\d.]+) img/s", out.stderr).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kimg", type=float, default=8.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    for name, code in NEIGHBOURS.items():
        row = {"setting": name}
        for mode in ("before", "after"):
            neighbour = subprocess.Popen([sys.executable, "-c", code]) if code else None
            try:
                time.sleep(1.0 if neighbour else 0.0)  # let the neighbour start before the fit measures free cores
                row[mode] = round(fit_speed(mode, args.kimg))
            finally:
                if neighbour:
                    neighbour.kill()
                    neighbour.wait()
        rows.append(row)
        print(f"| {name} | {row['before']} | {row['after']} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpus": os.cpu_count(), "kimg": args.kimg, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()

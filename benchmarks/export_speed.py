"""Export throughput: `gansynth export` img/s (generation + PNG encoding + journaling) for an untrained generator.

    python benchmarks/export_speed.py --recipe digits --resolution 32 --per-class 1000
    python benchmarks/export_speed.py --recipe cifar10 --resolution 32 --per-class 200 --device cuda

Speed does not depend on the weights, so the run is freshly initialised with the recipe's architecture (10 RGB
classes). Two exports into fresh folders, timed by the export itself (``ExportResult.images_per_second``), and a
third with ``--workers 0`` (encoding in the generating process) for comparison; the machine is printed with them.
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
from eval_speed import make_untrained_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="digits")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gansynth-export-speed-"))
    os.environ["GANSYNTH_CACHE"] = str(work / "cache")
    from gansynth.data import ImageDataset
    from gansynth.exporter import export

    size = (10, args.channels, args.resolution, args.resolution)
    dataset = ImageDataset(
        name="bench", source="bench", fingerprint="0", images=torch.zeros(size, dtype=torch.uint8),
        labels=torch.arange(10), class_names=[f"class{k}" for k in range(10)],
    )  # fmt: skip
    run = make_untrained_run(work / "runs" / "bench", args.recipe, dataset)
    rows = []
    for name, workers in (("default workers", None), ("default workers, again", None), ("--workers 0", 0)):
        result = export(run, work / f"out-{len(rows)}", per_class=args.per_class, device=args.device,
                        workers=workers, progress=False)  # fmt: skip
        rows.append({"variant": name, "images": result.written, "img_per_s": round(result.images_per_second, 1)})
        print(json.dumps(rows[-1]), flush=True)
    out = {
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
        "device": args.device + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else ""),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "recipe": args.recipe,
        "resolution": args.resolution,
        "channels": args.channels,
        "rows": rows,
    }
    print(json.dumps(out, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

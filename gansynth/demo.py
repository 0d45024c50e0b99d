"""The demo: the whole pipeline on the built-in digits — fit → evaluate → export → benchmark, ending with a verdict.

The digits are split once into a training and a test part (stratified, 20% held out); the GAN, the evaluation's
domain classifier and every benchmark arm see only the training part, so the verdict is measured on images that
neither the generator nor the classifiers ever saw.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from gansynth.errors import ConfigError
from gansynth.io import atomic_write_json, writing
from gansynth.rundir import SAMPLES

if TYPE_CHECKING:
    from gansynth.mixing import Mixing

DEMO_SEEDS = 3
DEMO_FILES = ("data", "run", "evaluate.json", "synthetic", "benchmark")  # what a demo folder holds, nothing else
MARKER = ".gansynth-demo.json"  # written first: a folder without it was not made by the demo, and is never emptied
STAGES = (  # the stage headings, short enough that an 80-column rule shows them whole
    "1/4 fit: class-conditional GAN on scikit-learn digits (training split)",
    "2/4 evaluate: FID, precision/recall, coverage, label fidelity (offline)",
    "3/4 export: balanced synthetic ImageFolder, images.csv, manifest.json",
    "4/4 benchmark: real vs real+synthetic vs rebalancing, held-out test",
)


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced.

    Attributes:
        out: the demo folder.
        run_dir: the trained run (``out/run``).
        metrics: the ``evaluate`` record (also in ``out/evaluate.json`` and the run's ``metrics.jsonl``).
        export: the export's :class:`gansynth.exporter.ExportResult` (``out/synthetic``).
        benchmark: the :class:`gansynth.benchmark.BenchmarkResult` (``out/benchmark``).
    """

    out: Path
    run_dir: Path
    metrics: dict
    export: object
    benchmark: object

    @property
    def verdict(self) -> str:
        return self.benchmark.verdict


def run_demo(
    out: Path,
    progress: bool = True,
    console: Console | None = None,
    *,
    kimg: float | None = None,
    seeds: int = DEMO_SEEDS,
    epochs: int | None = None,
    budget: str = "fixed",
    mixings: list[Mixing] | None = None,
    workers: int | str = 1,
) -> DemoResult:
    """Run the quickstart into ``out`` (fresh each time) and return what each stage produced.

    Args:
        out: demo folder; an earlier demo there is replaced, any other content is refused.
        progress: progress bars on stderr.
        console: where stage headings and progress go (stderr by default); tables and the verdict go to stdout.
        kimg: GAN training length (None: the digits recipe's).
        seeds: benchmark seeds per arm.
        epochs: benchmark training length (None: the benchmark default).
        budget: benchmark budget, ``fixed`` (the epochs rule; the demo's default, to stay a few minutes) or ``auto``
            (grown on validation, as ``gansynth benchmark`` does by default).
        mixings: candidate mixings of real+synthetic chosen on validation, "no synthetic" always among them (None:
            the default ``Mixing()`` only; the benchmark's own default tries ten).
        workers: benchmark classifier processes (``gansynth demo`` passes ``"auto"``: one per free core; see
            :mod:`gansynth.benchmark.parallel`).

    Raises:
        ConfigError: ``out`` is a file, or a non-empty folder that is not a demo folder.
    """
    from gansynth.benchmark import DEFAULT_EPOCHS, benchmark
    from gansynth.benchmark.digits import prepare_digits_split
    from gansynth.exporter import export
    from gansynth.metrics import evaluate
    from gansynth.mixing import Mixing
    from gansynth.terminal import print_metrics, print_summary
    from gansynth.train.fit import fit

    console = console or Console(stderr=True, highlight=False, soft_wrap=True)
    report = Console(highlight=False)  # tables and the verdict go to stdout, progress and headings to ``console``
    out = Path(out)
    _prepare(out)
    train_dir, test_dir = prepare_digits_split(out / "data")

    console.rule(STAGES[0])
    fitted = fit(train_dir, out=out / "run", recipe="digits", kimg=kimg, progress=progress, console=console)
    if fitted.status != "done":  # Ctrl-C / SIGTERM: fit saved a snapshot; the demo stops with it
        raise KeyboardInterrupt
    grids = sorted((fitted.run_dir / SAMPLES).glob("grid-*.png"))
    console.print(f"run: {fitted.run_dir}  (sample grid: {grids[-1] if grids else 'none'})")

    console.rule(STAGES[1])
    metrics = evaluate(fitted.run_dir, json_out=out / "evaluate.json", progress=progress)
    print_metrics(metrics, report)

    console.rule(STAGES[2])
    per_class = max(_real_counts(fitted.run_dir))  # as many per class as the largest real class: 1x the real data
    exported = export(fitted.run_dir, out / "synthetic", per_class=per_class, progress=progress)
    console.print(f"export: {exported.out} ({sum(exported.counts.values())} images, manifest {exported.manifest})")

    console.rule(STAGES[3])
    result = benchmark(
        train_dir,
        test=test_dir,
        synthetic=exported.out,
        epochs=epochs or DEFAULT_EPOCHS,
        seeds=seeds,
        out=out / "benchmark",
        progress=progress,
        flip=False,  # digits are not mirror-symmetric
        console=console,
        budget=budget,
        mixings=[Mixing()] if mixings is None else mixings,  # one mixing against "no synthetic": minutes, not ten
        workers=workers,
    )
    print_summary(result.record, report, report_dir=result.out)
    return DemoResult(out, fitted.run_dir, metrics, exported, result)


def _prepare(out: Path) -> None:
    """Make ``out`` an empty demo folder: an earlier demo's files are removed, anything else is refused.

    Only a folder the demo made (it holds :data:`MARKER`) is emptied, and only of the demo's own entries: a user's
    ``data/`` or ``benchmark/`` folder is never taken for the demo's.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file", hint="give a folder for the demo")
    if out.is_dir() and any(out.iterdir()):
        names = sorted(p.name for p in out.iterdir())
        foreign = [n for n in names if n not in (*DEMO_FILES, MARKER)]
        if foreign or MARKER not in names or (out / MARKER).is_symlink():
            raise ConfigError(
                f"--out {out} is not empty and was not made by `gansynth demo` "
                f"(found: {', '.join((foreign or names)[:5])})",
                hint="give an empty or new folder for the demo",
            )
        for name in DEMO_FILES:
            path = out / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / MARKER, {"made_by": "gansynth demo", "entries": list(DEMO_FILES)})


def _real_counts(run_dir: Path) -> list[int]:
    from gansynth.rundir import RunDir

    return [int(c) for c in RunDir(run_dir).dataset()["counts"].values()]

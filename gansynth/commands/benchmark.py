"""``gansynth benchmark``: does the synthetic data help? Real vs real+synthetic vs synthetic-only vs rebalancing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gansynth.benchmark import ARMS, DEFAULT_EPOCHS, DEFAULT_MODEL, DEFAULT_SEEDS
from gansynth.benchmark.select import VALIDATION_FOLDS

SUMMARY = "Does the synthetic data help a classifier?"
EXAMPLES = [
    ("gansynth benchmark ./images --run runs/images --test ./test", ""),
    ("gansynth benchmark ./images --synthetic synthetic/images", ""),
    ("gansynth benchmark digits --arms real,rebalanced --seeds 5", ""),
]
MIXING_HELP = (
    "A candidate mixing of real+synthetic, repeatable: 'none' or key=value pairs of gansynth.mixing.Mixing, e.g. "
    "'weight=0.3,schedule=deferred' (default: a built-in set, chosen on validation; one → used as given)."
)

THREADS_HELP = "CPU threads for torch (1 is often fastest on a shared machine)."
WORKERS_HELP = (
    "Classifier runs side by side on a CPU, one process and one thread each; auto: one per free core (1 with "
    "--threads, $GANSYNTH_THREADS or on CUDA)."
)
FOLDS_HELP = (
    "The budget and the mixing are chosen by stratified K-fold cross-validation over REAL_TRAIN (each image "
    "validated once; K classifiers per candidate); 1: one split of --validation-fraction."
)
EXPORT_FILTER_HELP = "With --run: the export's diversity filter (auto, diverse or none; see gansynth export)."


ARMS_HELP = (
    f"Comma-separated arms of: {', '.join(ARMS)}. Default: all that apply except mixup (opt-in: mixup training, "
    "Beta(0.2, 0.2), one more classifier run per seed)."
)


def benchmark_command(
    real_train: Annotated[
        str, typer.Argument(help="Real labeled images: a folder <root>/<class>/*.png, or 'digits'.", show_default=False)
    ],
    test: Annotated[
        Path | None, typer.Option(help="Real test images (default: a stratified held-out split of REAL_TRAIN).")
    ] = None,
    synthetic: Annotated[
        Path | None, typer.Option(help="Synthetic images: an export folder or any <root>/<class>/*.png tree.")
    ] = None,
    run: Annotated[Path | None, typer.Option(help="Run directory: export its generator's images and use them.")] = None,
    arms: Annotated[str | None, typer.Option(help=ARMS_HELP)] = None,
    model: Annotated[str, typer.Option(help="Any timm model name, trained from scratch (e.g. resnet18 on GPU).")] = (
        DEFAULT_MODEL
    ),
    epochs: Annotated[
        int, typer.Option(min=1, help="Passes over the real training set; every arm trains as many steps.")
    ] = DEFAULT_EPOCHS,
    seeds: Annotated[int, typer.Option(min=1, help="Independent runs per arm (3 or more for a verdict).")] = (
        DEFAULT_SEEDS
    ),
    synthetic_per_class: Annotated[
        int | None, typer.Option(min=1, help="real+synthetic adds this many synthetic images to every class.")
    ] = None,
    balance_to: Annotated[
        str | None, typer.Option(help="real+synthetic tops every class up to 'max' (the largest class) or a count.")
    ] = None,
    ratio_sweep: Annotated[
        str | None, typer.Option(help="Extra real+synthetic arms adding ratio × largest real class, e.g. 0.25,0.5,1,2.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Report folder: report.json, report.md, PNG charts.")] = Path("benchmark"),
    flip: Annotated[
        bool | None,
        typer.Option("--flip/--no-flip", help="Horizontal-flip augmentation (default: on, off for digits)."),
    ] = None,
    test_fraction: Annotated[
        float, typer.Option(min=0.01, max=0.9, help="Share of each class held out when --test is not given.")
    ] = 0.2,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int | None, typer.Option(min=1, help=THREADS_HELP)] = None,
    workers: Annotated[str, typer.Option(help=WORKERS_HELP)] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress (the summary still prints).")] = False,
    mixing: Annotated[list[str] | None, typer.Option(help=MIXING_HELP)] = None,
    budget: Annotated[
        str, typer.Option(help="auto: steps grow until real-only converges on validation; fixed: the --epochs rule.")
    ] = "auto",
    validation_folds: Annotated[int, typer.Option(min=1, help=FOLDS_HELP)] = VALIDATION_FOLDS,
    validation_fraction: Annotated[
        float, typer.Option(min=0.01, max=0.9, help="With --validation-folds 1: the share of each class validated.")
    ] = 0.2,
    export_filter: Annotated[str, typer.Option(help=EXPORT_FILTER_HELP)] = "auto",
) -> None:
    """Train a classifier on real, real+synthetic, synthetic, rebalanced, balanced-softmax (mixup) arms; verdict."""
    from gansynth.benchmark import BenchmarkSpec, benchmark
    from gansynth.mixing import parse_mixing
    from gansynth.runtime import make_runtime, set_threads
    from gansynth.terminal import print_summary

    spec = BenchmarkSpec(
        arms=arms,
        model=model,
        epochs=epochs,
        seeds=seeds,
        synthetic_per_class=synthetic_per_class,
        balance_to=balance_to,
        ratio_sweep=ratio_sweep,
        out=out,
        progress=not quiet,
        flip=flip,
        test_fraction=test_fraction,
        mixings=[parse_mixing(text) for text in mixing] if mixing else None,
        budget=budget,
        validation_folds=validation_folds,
        validation_fraction=validation_fraction,
        export_filter=export_filter,
        workers=_workers(workers, threads),
    )
    set_threads(threads)
    result = benchmark(real_train, test=test, synthetic=synthetic, run=run, spec=spec, runtime=make_runtime(device))
    print_summary(result.record, report_dir=result.out)


def _workers(text: str, threads: int | None) -> int | str:
    """--workers as the spec takes it: ``auto`` (1 when --threads fixes this process's threads) or a count."""
    from gansynth.errors import ConfigError

    if text == "auto":
        return 1 if threads is not None else "auto"
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"--workers must be 'auto' or a count >= 1, got {text!r}", hint="e.g. --workers 2")
    return int(text)

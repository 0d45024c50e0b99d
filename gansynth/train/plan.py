"""A training plan sized to the machine: a time budget → (model widths, kimg, CPU threads), fixed before training.

The rule (also in README):

1. **Which length applies.** An explicit ``--kimg`` (or ``--set train.kimg=``) wins, then a recipe's
   ``train.kimg``, then ``--budget``; with none of them a CPU fit plans for :data:`CPU_BUDGET_S` and a CUDA fit
   trains the default length. ``--budget`` together with ``--kimg`` is refused (they contradict).
2. **Threads** (every new CPU fit, whatever sets its length): one per core that is free right now (measured from
   ``/proc/stat`` over a short window; ``$GANSYNTH_THREADS`` fixes the count instead), so that a neighbour's job
   costs this fit its fair share instead of oversubscribed, spinning threads. (``OMP_WAIT_POLICY=PASSIVE`` was
   measured and rejected: 40% slower alone, benchmarks/README.md.)
3. **Calibration.** The real training step (networks, loss, augmentation, EMA) of each width of
   :data:`WIDTH_LADDER` is timed on this device at this resolution, narrowest first, for about
   :data:`CALIBRATION_S` seconds each after a warm-up (the median step time counts), stopping at the first width
   that is too slow for the budget.
4. **Choice.** The training wants ``needed = clamp(EPOCHS · N / 1000, MIN_KIMG, MAX_KIMG)`` kimg for N images.
   The widest width whose measured throughput reaches ``needed`` within the budget (minus calibration and
   snapshot time) is chosen, the narrowest when none does; kimg = that throughput × the remaining time, at most
   ``MAX_KIMG``. Widths the user set (recipe, ``--set model.g_width=``) are kept and only kimg is planned.
   A budget plan also trains with :data:`BUDGET_PROFILE` (short-training settings) where the user set nothing.

The chosen widths and kimg are written to ``config.json`` with a ``plan`` record (source, budget, measured
throughput, expected seconds, threads), so a run is reproducible from its config and ``--resume`` continues the same
plan without calibrating again.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from gansynth.config import Config
from gansynth.data import RESOLUTIONS, ImageDataset
from gansynth.errors import ConfigError
from gansynth.runtime import Runtime, set_threads

CPU_BUDGET_S = 15 * 60  # the default on CPU: a useful generator, with decode and export, in under 20 minutes
WIDTH_LADDER = (16, 24, 32, 48, 64, 96, 128, 192, 256)  # g_width = d_width
EPOCHS = 50  # passes over the data a plan aims for ...
MIN_KIMG, MAX_KIMG = 150.0, 1000.0  # ... within these bounds (kimg)
CALIBRATION_S = 2.0  # seconds of timed steps per width ...
CALIBRATION_STEPS = (8, 200)  # ... at least / at most this many
# Untimed steps first: at least this many, for at least this long. With 3 steps / 0.5 s the plan of a 28 px folder
# measured 228 img/s where training ran at ~262, and the fit ended 17% short of its budget (benchmarks/README.md).
WARMUP_STEPS, WARMUP_S = 6, 1.5
OVERHEAD = 0.06  # share of the training time spent outside steps (ticks, snapshots, sample grids)
MIN_BUDGET_S, MAX_BUDGET_S = 10.0, 30 * 24 * 3600.0
# What a budget plan trains with besides its widths and length (keys the user set are kept): the settings of the
# digits recipe, measured to learn every class in minutes on a CPU (benchmarks/README.md, issue 12). The GPU-length
# defaults (z 128, equal learning rates, DiffAugment) gave a generator that ignored its class labels in a 15-minute
# CPU plan on a 28 px digits folder; projection D plus a real-only auxiliary classifier, with stronger mode seeking,
# raised label fidelity and diversity together (digits: label fidelity 0.947 → 0.996, coverage 0.59 → 0.65; the
# new-user folder: every class recognized in ≥ 96.5% of the samples, benchmarks/README.md).
BUDGET_PROFILE = {
    "model.z_dim": 64,
    "model.embed_dim": 64,
    "model.conditioning": "projection-ac",
    "train.acgan_weight": 2.0,  # the digits recipe's 1 is enough on balanced data; 2 for the tail of imbalanced folders
    "train.ms_weight": 0.2,
    "train.g_lr": 1e-4,  # two time-scale update rule: D learns 4x faster
    "train.d_lr": 4e-4,
    "train.ema_kimg": 2.0,
    "augment.enabled": False,
}
THREADS_ENV = "GANSYNTH_THREADS"  # a fixed CPU thread count instead of the free cores
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_budget(text: str | float | int) -> float:
    """``"20m"``, ``"2h"``, ``"1h30m"``, ``"90s"`` or a number of minutes → seconds.

    Raises:
        ConfigError: not a duration, or outside [10 s, 30 days].
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text) * 60.0
    else:
        raw = str(text).strip().lower().replace(" ", "")
        parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", raw)
        if re.fullmatch(r"\d+(?:\.\d+)?", raw):
            seconds = float(raw) * 60.0
        elif parts and "".join(n + u for n, u in parts) == raw:
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
        else:
            raise ConfigError(f"--budget {text!r} is not a duration", hint="examples: --budget 20m, 2h, 1h30m, 90s")
    if not (math.isfinite(seconds) and MIN_BUDGET_S <= seconds <= MAX_BUDGET_S):
        raise ConfigError(f"--budget {text!r} is out of range", hint="a budget from 10s to 30d, e.g. --budget 20m")
    return seconds


def format_seconds(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def free_cores(window_s: float = 0.25) -> int:
    """Cores of this process's CPU set that were idle over ``window_s`` (rounded, at least 1).

    Reads ``/proc/stat`` twice; where it is missing (not Linux) every allowed core counts as free.
    """
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    first = _cpu_times()
    if first is None:
        return len(allowed)
    time.sleep(window_s)
    second = _cpu_times()
    idle = 0.0
    for cpu in allowed:
        if cpu in first and cpu in second:
            (idle0, total0), (idle1, total1) = first[cpu], second[cpu]
            idle += (idle1 - idle0) / max(total1 - total0, 1)
        else:
            idle += 1.0
    return max(1, min(len(allowed), round(idle)))


def _cpu_times() -> dict[int, tuple[int, int]] | None:
    """cpu index → (idle + iowait jiffies, total jiffies)."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    times = {}
    for line in lines:
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            numbers = [int(v) for v in values[:8]]
            times[int(name[3:])] = (numbers[3] + numbers[4], sum(numbers))
    return times or None


def needed_kimg(num_images: int) -> float:
    """The length a plan aims for: ``EPOCHS`` passes over the data, within [MIN_KIMG, MAX_KIMG]."""
    return min(MAX_KIMG, max(MIN_KIMG, EPOCHS * num_images / 1000.0))


def with_width(config: Config, width: int) -> Config:
    return dataclasses.replace(config, model=dataclasses.replace(config.model, g_width=width, d_width=width))


def measure_throughput(
    config: Config, dataset: ImageDataset, runtime: Runtime, seconds: float = CALIBRATION_S
) -> float:
    """Images per second of the real training step of ``config`` on ``runtime``: warm-up steps not counted, then
    the median step time (a neighbour's burst or a collection pause in one step does not set the plan)."""
    from gansynth.train.trainer import Trainer

    with tempfile.TemporaryDirectory(prefix="gansynth-calibrate-") as tmp:
        trainer = Trainer(config, dataset, runtime, Path(tmp))
        steps, start = 0, time.perf_counter()  # warm-up: allocator, kernels, caches and thread pools settle
        while steps < WARMUP_STEPS or time.perf_counter() - start < WARMUP_S:
            trainer.train_step()
            steps += 1
        _sync(runtime)
        fewest, most = CALIBRATION_STEPS
        times: list[float] = []
        start = last = time.perf_counter()
        while len(times) < most and (len(times) < fewest or last - start < seconds):
            trainer.train_step()
            _sync(runtime)
            now = time.perf_counter()
            times.append(now - last)
            last = now
    step_s = sorted(times)[len(times) // 2]
    return config.train.batch_size * config.train.d_steps / max(step_s, 1e-9)


def _sync(runtime: Runtime) -> None:
    if runtime.device.type == "cuda":
        torch.cuda.synchronize(runtime.device)


def choose(
    config: Config,
    dataset: ImageDataset,
    budget_s: float,
    measure: Callable[[Config], float],
    keep_widths: bool,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[Config, dict[int, float]]:
    """Pick widths and kimg for ``budget_s`` from ``measure(config) → img/s`` (see the module docstring).

    Returns the planned config (with its ``plan`` record) and the measured img/s per width.
    """
    started = clock()
    want = needed_kimg(len(dataset))
    ladder = [config.model.g_width] if keep_widths else list(WIDTH_LADDER)
    measured: dict[int, float] = {}
    for width in ladder:
        speed = measure(config if keep_widths else with_width(config, width))
        measured[width] = speed
        remaining = (budget_s - (clock() - started)) * (1.0 - OVERHEAD)
        if speed * remaining / 1000.0 < want:
            break
    remaining = max(budget_s - (clock() - started), 0.0) * (1.0 - OVERHEAD)
    fitting = [w for w, speed in measured.items() if speed * remaining / 1000.0 >= want]
    width = max(fitting) if fitting else min(measured)
    speed = measured[width]
    kimg = max(min(MAX_KIMG, speed * remaining / 1000.0), 1.0)
    kimg = math.floor(kimg * 10) / 10  # a round number in config.json
    planned = config if keep_widths else with_width(config, width)
    plan = dataclasses.replace(
        config.plan,
        source="budget",
        budget_s=float(budget_s),
        img_per_s=round(speed, 1),
        expected_s=round((clock() - started) + kimg * 1000.0 / speed / (1.0 - OVERHEAD), 1),
    )
    planned = dataclasses.replace(planned, train=dataclasses.replace(planned.train, kimg=kimg), plan=plan)
    return planned, measured


def plan_fit(
    config: Config,
    dataset: ImageDataset,
    runtime: Runtime,
    budget: str | float | None,
    explicit: set[str],
    announce: Callable[[str], None] = lambda line: None,
    reload: Callable[[int], ImageDataset] | None = None,
) -> tuple[Config, ImageDataset]:
    """The config a new fit trains with (the CPU threads chosen, and a budget plan unless a length was given) and
    the dataset at the resolution it trains at.

    Args:
        reload: loads the data at a smaller resolution (None: the resolution is fixed, e.g. ``--resolution``).
        explicit: the dotted config keys the user set (recipe, options, ``--set``): ``train.kimg`` there means the
            length was given; ``model.g_width``/``model.d_width`` there keep the widths.
        announce: prints one line (which length applies, the calibration, the plan).
    """
    budget_s = None if budget is None else parse_budget(budget)
    if budget_s is not None and "train.kimg" in explicit:
        raise ConfigError(
            "--budget and a training length (--kimg, train.kimg in the recipe or --set) were both given",
            hint="drop one: --budget plans the length for you, --kimg fixes it",
        )
    if budget_s is not None and runtime.distributed:
        raise ConfigError(
            "--budget is not supported under torchrun (every process would calibrate its own plan)",
            hint="give the length with --kimg for multi-process training",
        )
    threads = choose_threads(runtime)
    if threads:
        config = dataclasses.replace(config, plan=dataclasses.replace(config.plan, threads=threads))
    on = f"; {threads} CPU thread(s)" if threads else ""
    if budget_s is None:
        if "train.kimg" in explicit:
            line = f"{config.train.kimg:g} kimg as given (--kimg or recipe){on}"
            return _fixed(config, "given", announce, line), dataset
        if runtime.device.type != "cpu" or runtime.distributed:
            line = f"{config.train.kimg:g} kimg (the default length off one CPU)"
            return _fixed(config, "default", announce, line), dataset
        budget_s = float(CPU_BUDGET_S)
        announce(f"plan: no length given: a {format_seconds(budget_s)} budget (the CPU default; --budget or --kimg)")
    config = with_profile(config, explicit)
    keep = bool({"model.g_width", "model.d_width"} & explicit)
    planned, dataset = _plan_resolution(config, dataset, runtime, budget_s, keep, reload, announce)
    m, t, p = planned.model, planned.train, planned.plan
    announce(
        f"plan: width {m.g_width}/{m.d_width}, {t.kimg:g} kimg at {dataset.resolution} px (~{p.img_per_s:.0f} img/s), "
        f"expected {format_seconds(p.expected_s)} of a {format_seconds(p.budget_s)} budget{on}"
    )
    return planned, dataset


def _plan_resolution(
    config: Config,
    dataset: ImageDataset,
    runtime: Runtime,
    budget_s: float,
    keep: bool,
    reload: Callable[[int], ImageDataset] | None,
    announce: Callable[[str], None],
) -> tuple[Config, ImageDataset]:
    """:func:`choose` at the data's resolution; when even the narrowest width cannot reach :func:`needed_kimg` in
    the budget and ``reload`` can load the data smaller, plan again one supported resolution down (the budget caps
    the resolution: a short generator at 16 px beats an unfinished one at 32)."""
    started = time.perf_counter()
    while True:
        left = max(budget_s - (time.perf_counter() - started), 1.0)
        measure = lambda c, d=dataset: measure_throughput(c, d, runtime)  # noqa: E731
        planned, measured = choose(config, dataset, left, measure, keep)
        speeds = ", ".join(f"{w}: {s:.0f}" for w, s in measured.items())
        announce(f"calibration ({runtime.device.type}, {dataset.resolution} px, img/s by width): {speeds}")
        want, smaller = needed_kimg(len(dataset)), [r for r in RESOLUTIONS if r < dataset.resolution]
        if planned.train.kimg >= want or reload is None or not smaller:
            break
        announce(
            f"plan: at {dataset.resolution} px the budget reaches {planned.train.kimg:g} of the {want:g} kimg this "
            f"data needs; planning at {smaller[-1]} px instead (--resolution keeps a size)"
        )
        dataset = reload(smaller[-1])
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, resolution=dataset.resolution))
    plan = dataclasses.replace(planned.plan, budget_s=float(budget_s))
    plan = dataclasses.replace(plan, expected_s=round(plan.expected_s + (budget_s - left), 1))
    return dataclasses.replace(planned, plan=plan), dataset


def choose_threads(runtime: Runtime) -> int:
    """CPU threads for a new single-process CPU fit (0: not a CPU fit): ``$GANSYNTH_THREADS`` when set, else the
    cores free right now (:func:`free_cores`). Applied at once and recorded, so ``--resume`` uses the same count."""
    if runtime.device.type != "cpu" or runtime.distributed:
        return 0
    raw = os.environ.get(THREADS_ENV, "").strip()
    if raw:
        if not raw.isdigit() or not 1 <= int(raw) <= 4096:
            raise ConfigError(f"${THREADS_ENV}={raw!r} is not a thread count", hint=f"unset it, or {THREADS_ENV}=2")
        threads = int(raw)
    else:
        threads = free_cores()
    set_threads(threads)
    return threads


def with_profile(config: Config, explicit: set[str]) -> Config:
    """The short-training settings of :data:`BUDGET_PROFILE` for every key the user did not set."""
    from gansynth.config import merge

    updates: dict[str, dict] = {}
    for dotted, value in BUDGET_PROFILE.items():
        if dotted not in explicit:
            section, _, key = dotted.partition(".")
            updates.setdefault(section, {})[key] = value
    return merge(config, updates)


def _fixed(config: Config, source: str, announce: Callable[[str], None], line: str) -> Config:
    announce(f"plan: {line}")
    return dataclasses.replace(config, plan=dataclasses.replace(config.plan, source=source))


def apply_threads(config: Config, runtime: Runtime) -> None:
    """Use the thread count a budget plan recorded (a resumed run keeps its plan's threads)."""
    if config.plan.threads and runtime.device.type == "cpu":
        set_threads(config.plan.threads)


def explicit_keys(recipe_sections: dict | None, options: dict, overrides: list[str] | tuple[str, ...]) -> set[str]:
    """Dotted keys set by a recipe's sections, CLI-style options (``"section.key": value``) and ``--set`` strings."""
    from gansynth.config import parse_override

    keys = {f"{s}.{k}" for s, values in (recipe_sections or {}).items() if isinstance(values, dict) for k in values}
    keys |= {k for k, v in options.items() if v is not None}
    for text in overrides:
        for section, values in parse_override(text).items():
            keys |= {f"{section}.{k}" for k in values}
    return keys

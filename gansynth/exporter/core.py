"""``export()``: a run's generator → an exactly balanced (or topped-up) synthetic ImageFolder with images.csv and a
manifest; deterministic, resumable, shardable.

Generation runs in this process on the device, one unit (``plan.CHUNK`` images) per forward pass; encoding and
writing run in worker processes; a unit is journaled once all its files are on disk.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch

from gansynth.checkpoint import resolve_run
from gansynth.errors import ExportError
from gansynth.exporter import plan as P
from gansynth.exporter import store
from gansynth.exporter.draw import Drawn, Scorer, draw_units
from gansynth.exporter.encode import worker_init, write_images
from gansynth.exporter.progress import ProgressBar
from gansynth.exporter.provenance import build_manifest, domain_scorer
from gansynth.exporter.spec import ExportSpec
from gansynth.images import resize
from gansynth.rundir import RunDir
from gansynth.runtime import resolve_device, set_threads
from gansynth.specs import as_spec

SMALL_MACHINE_CPUS = 4  # up to this many cores a CPU export encodes in the generating process (workers = 0)
CPUS_PER_CPU_WORKER = 4  # above it, one encoder process per this many cores; the rest generate
MAX_GPU_WORKERS = 8  # a GPU generates far faster than one core encodes: up to this many encoder processes
# Units generated together in one fixed-shape forward pass on CUDA (64 × 16 = 1 024 rows); the CPU uses one unit per
# pass, the shape of sampler.generate and SyntheticDataset, so CPU bytes match them.
CUDA_UNITS_PER_PASS = 16


@dataclass(frozen=True)
class ExportResult:
    """What an ``export()`` call did.

    Attributes:
        out: the export folder.
        counts: images per class name in the whole export (all shards).
        written: files written by this call.
        kept: files of this shard found complete from an earlier call (resume).
        complete: every shard is done; ``images.csv`` and ``manifest.json`` exist.
        shard: ``(I, N)`` of this call.
        acceptance: per-class share of candidates that passed ``min_confidence`` (None without a filter).
        seconds: wall time of this call.
    """

    out: Path
    counts: dict[str, int]
    written: int
    kept: int
    complete: bool
    shard: tuple[int, int]
    acceptance: dict[str, float] | None
    seconds: float

    @property
    def manifest(self) -> Path | None:
        return self.out / store.MANIFEST if self.complete else None

    @property
    def metadata(self) -> Path | None:
        return self.out / store.METADATA if self.complete else None

    @property
    def images_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def export(
    run: str | Path | None = None,
    out: str | Path | None = None,
    per_class: int | None = None,
    *,
    spec: ExportSpec | None = None,
    **options,
) -> ExportResult:
    """Write a synthetic labeled dataset from a run's EMA generator.

    Args:
        run: run directory (None: the most recent under ``./runs``).
        out: export folder (None: ``synthetic/<run name>``).
        per_class: exactly this many images for every selected class (a shorthand for ``ExportSpec.per_class``).
        spec: the export's options as one :class:`ExportSpec`; or pass its fields as keywords
            (``export(run, out, 100, seed=1, format="webp")``), not both.

    The last shard to finish (or any rerun) writes images.csv and manifest.json for the whole export; the
    filter (``min_confidence``) scores images at the trained resolution, before the resize to ``size``.

    Raises:
        ConfigError: an option out of range, an unknown class, ``balance_to`` below the largest real class.
        CheckpointError: not a run, or a run without a generator.
        ExportError: ``out`` is a file or holds another command's export, no scorer for ``min_confidence``, or a
            class that cannot reach its count through the filter.
    """
    started = time.perf_counter()
    spec = as_spec(ExportSpec, spec, options if per_class is None else {**options, "per_class": per_class}, "export")
    run_dir = resolve_run(run)
    plans = _class_plans(RunDir(run_dir).dataset(), spec)

    from gansynth.sampler import load_sampler

    sampler = load_sampler(run_dir, device=resolve_device(spec.device), checkpoint=spec.checkpoint)
    filtered = spec.min_confidence is not None
    scorer = spec.scorer
    scorer_name = None if not filtered else "domain" if scorer is None else _callable_name(scorer)
    size = sampler.native_size if spec.size is None else spec.size
    identity = _identity(sampler.checkpoint_sha256, plans, spec, scorer_name, size)
    out = Path(out) if out is not None else Path("synthetic") / run_dir.resolve().name
    store.prepare_out(out, identity, spec.force, write=False)  # refuse before a classifier is trained
    scorer_info = {"name": scorer_name} if filtered else None
    if filtered and scorer is None:
        scorer, scorer_info = domain_scorer(sampler, spec.progress)
    store.prepare_out(out, identity, spec.force)

    job = _Job(
        out, sampler, plans, spec.seed, spec.truncation, spec.min_confidence, scorer, spec.format, spec.shard, size
    )
    units = P.build_units(plans)
    _run_job(job, P.shard_units(units, spec.shard), spec, sampler.device.type)
    complete = job.finish_if_complete(units)
    if complete and not (out / store.MANIFEST).exists():
        manifest = build_manifest(
            sampler, plans, job.records, identity, scorer_info, spec.shard, spec.command_line, spec.format
        )
        store.write_manifest(out, manifest, job.tag)
    acceptance = job.acceptance() if filtered else None
    return ExportResult(
        out, {p.name: p.count for p in plans}, job.written, job.kept, complete, spec.shard, acceptance,
        time.perf_counter() - started,
    )  # fmt: skip


def _class_plans(info: dict, spec: ExportSpec) -> list[P.ClassPlan]:
    """One plan per selected class: its training index, name, safe folder, images to write, real count."""
    names = P.read_class_names(info)
    labels = P.select_classes(names, spec.classes)
    counts, real = P.class_counts(info, labels, spec.per_class, spec.balance_to)
    folders = P.folder_names(names)
    return [P.ClassPlan(k, names[k], folders[k], n, r) for k, n, r in zip(labels, counts, real)]


def _run_job(job: _Job, units: list[P.Unit], spec: ExportSpec, device_type: str) -> None:
    """Run ``job`` over this shard's units with the machine's thread and encoder counts (threads restored)."""
    threads = torch.get_num_threads()
    if device_type == "cpu":
        set_threads(generation_threads(_cpus()))
    encoders = default_workers(device_type, _cpus()) if spec.workers is None else spec.workers
    try:
        job.run(units, encoders, spec.progress)
    finally:
        set_threads(threads)


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_workers(device_type: str, cpus: int) -> int:
    """Encoder processes when ``--workers`` is not given.

    On the CPU, generation is the bottleneck (a PNG of 32 px encodes ~4× faster than the BigGAN generator makes
    it): small machines encode in the generating process, which keeps every core on generation (measured on 2
    cores: 1 550 img/s inline vs 1 170 with one or two encoder processes); larger ones give a quarter of the cores
    to encoders. On a GPU the cores only encode.
    """
    if device_type != "cpu":
        return max(1, min(MAX_GPU_WORKERS, cpus - 1))
    return 0 if cpus <= SMALL_MACHINE_CPUS else cpus // CPUS_PER_CPU_WORKER


def generation_threads(cpus: int) -> int:
    """CPU threads of the generator: the cores the default encoder workers leave free, at least one.

    Threads that compete with encoder processes for cores make a CPU export slower. The count depends on the
    machine only, never on ``--workers``: a CPU matrix product's float result may depend on its thread count, and
    bytes must not depend on ``--workers``.
    """
    return max(1, cpus - default_workers("cpu", cpus))


def _callable_name(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def _identity(checkpoint: str, plans: list[P.ClassPlan], spec: ExportSpec, scorer_name, size: int) -> dict:
    """The arguments that determine the export's content (shard, workers and device do not)."""
    return {
        "scheme": P.SCHEME_VERSION,
        "checkpoint_sha256": checkpoint,
        "classes": [[p.label, p.folder, p.count] for p in plans],
        "seed": spec.seed,
        "truncation": spec.truncation,
        "format": spec.format,
        "size": size,
        "min_confidence": spec.min_confidence,
        "scorer": scorer_name,
    }


class _Inline(Executor):
    """``workers=0``: encode in this process, through the same interface as the pool."""

    def submit(self, fn, /, *args, **kwargs):
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - delivered through future.result(), as a pool would
            future.set_exception(exc)
        return future


def _pool(workers: int) -> Executor:
    if workers == 0:
        return _Inline()
    # fork (where there is one), like DataLoader workers: spawn/forkserver would re-run the caller's main script,
    # which breaks scripts without an `if __name__ == "__main__"` guard; the workers only run numpy and Pillow
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=worker_init, initargs=(os.getpid(),)
    )


@dataclass
class _Job:
    """The state of one export call: generate units, hand them to encoders, journal finished units."""

    out: Path
    sampler: object
    plans: list[P.ClassPlan]
    seed: int
    truncation: float | None
    min_confidence: float | None
    scorer: Scorer | None
    fmt: str
    shard: tuple[int, int]
    size: int
    written: int = 0
    kept: int = 0
    records: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)  # label → [drawn, passed] in this call

    @property
    def tag(self) -> str:
        return f"s{self.shard[0]}of{self.shard[1]}"

    def files(self, plan: P.ClassPlan, seeds: list[int]) -> list[str]:
        return [P.file_name(plan.folder, s, self.fmt) for s in seeds]

    def run(self, units: list[P.Unit], workers: int, progress: bool) -> None:
        for plan in self.plans:
            if plan.count:  # no empty folders: ImageFolder refuses them
                store.class_folder(self.out, plan.folder)
        store.remove_temp_files(self.out, self.tag)
        self.records = store.read_journals(self.out)
        existing = store.existing_files(self.out, [p.folder for p in self.plans])
        journal = store.journal_path(self.out, self.shard)
        failed: dict[int, str] = {}
        pool, pending = _pool(workers), deque()
        try:
            with ProgressBar(progress, sum(u.quota for u in units)) as bar:
                todo = []
                for unit in units:
                    record = self.records.get(unit.key)
                    names = self.files(self.by_label[unit.label], record["seeds"]) if record else []
                    if store.unit_on_disk(existing, names, record):
                        self.kept += unit.quota
                        bar.advance(unit.quota, fresh=False)
                    else:
                        todo.append(unit)
                group = self.units_per_pass()
                for start in range(0, len(todo), group):
                    batch = [u for u in todo[start : start + group] if u.label not in failed]
                    for unit, drawn in zip(batch, self.draw(batch)):
                        if not drawn.complete(unit):
                            failed[unit.label] = self.by_label[unit.label].name
                            continue
                        pending.append((unit, drawn, self._submit(pool, unit, drawn)))
                    while len(pending) > 2 * max(workers, 1):
                        self._journal(journal, bar, *pending.popleft())
                while pending:
                    self._journal(journal, bar, *pending.popleft())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if failed:
            raise self._failure(failed)

    @cached_property
    def by_label(self) -> dict[int, P.ClassPlan]:
        return {p.label: p for p in self.plans}

    def units_per_pass(self) -> int:
        return CUDA_UNITS_PER_PASS if self.sampler.device.type == "cuda" else 1

    def draw(self, units: list[P.Unit]) -> list[Drawn]:
        """Generate (and filter) ``units`` together; per-class draw statistics of this call are updated."""
        if not units:
            return []
        results = draw_units(
            self.sampler,
            units,
            self.seed,
            self.truncation,
            P.CHUNK * self.units_per_pass(),  # one batch shape for every pass, the last (partial) group included
            self.min_confidence,
            self.scorer,
        )
        for unit, drawn in zip(units, results):
            drawn.images = resize(drawn.images, self.size)  # after scoring: the filter sees the trained resolution
            stats = self.stats.setdefault(unit.label, [0, 0])
            stats[0] += drawn.drawn
            stats[1] += drawn.passed
        return results

    def _submit(self, pool: Executor, unit: P.Unit, drawn: Drawn) -> Future:
        """Hand every file of the unit to an encoder: a file of an unjournaled unit is never trusted by its name
        (it may be a truncated copy); rewriting gives the same bytes."""
        names = self.files(self.by_label[unit.label], drawn.seeds)
        array = drawn.images.permute(0, 2, 3, 1).contiguous().numpy()  # [n, H, W, C] uint8
        return pool.submit(write_images, array, [str(self.out / name) for name in names], self.fmt, self.tag)

    def _journal(self, journal: Path, bar: ProgressBar, unit: P.Unit, drawn: Drawn, future: Future) -> None:
        try:
            sizes = future.result()
        except OSError as exc:
            raise ExportError(
                f"cannot write the images of {self.out} ({exc.strerror or exc})",
                hint="free disk space or choose another --out; rerunning the same command resumes",
            ) from None
        self.written += len(sizes)
        store.append_unit(journal, unit, drawn.seeds, drawn.drawn, drawn.passed, drawn.scores, sizes)
        self.records[unit.key] = {
            "seeds": drawn.seeds, "drawn": drawn.drawn, "passed": drawn.passed, "scores": drawn.scores, "sizes": sizes
        }  # fmt: skip
        bar.advance(unit.quota)

    def _failure(self, failed: dict[int, str]) -> ExportError:
        rates = ", ".join(f"{name} ({self.stats[k][1] / max(self.stats[k][0], 1):.1%})" for k, name in failed.items())
        return ExportError(
            f"--min-confidence {self.min_confidence}: too few samples pass for {rates} "
            f"(at most {P.MAX_DRAW_FACTOR} draws per image)",
            hint="lower --min-confidence, train the run longer, or leave these classes out with --classes; "
            "the other classes' images are kept",
        )

    def acceptance(self) -> dict[str, float]:
        """Per class: passed / drawn over every journaled unit (all shards and calls)."""
        rates = {}
        for plan in self.plans:
            recs = [r for k, r in self.records.items() if k[0] == plan.label]
            drawn = sum(r["drawn"] for r in recs)
            rates[plan.name] = sum(r["passed"] for r in recs) / drawn if drawn else float("nan")
        return rates

    def finish_if_complete(self, units: list[P.Unit]) -> bool:
        """If every unit of every shard is journaled and on disk: remove all temp files, write images.csv."""
        self.records = store.read_journals(self.out)
        existing = store.existing_files(self.out, [p.folder for p in self.plans])
        for unit in units:
            record = self.records.get(unit.key)
            names = self.files(self.by_label[unit.label], record["seeds"]) if record else []
            if not store.unit_on_disk(existing, names, record):
                return False
        self.records = {u.key: self.records[u.key] for u in units}
        store.remove_temp_files(self.out)
        filtered = self.min_confidence is not None
        rows = store.metadata_rows(self.plans, self.records, self.fmt, filtered)
        found = {p.label: sum(1 for r in rows if r[1] == p.label) for p in self.plans}
        if found != {p.label: p.count for p in self.plans}:  # pragma: no cover - a bug, never a user's mistake
            raise RuntimeError(f"export counts {found} differ from the plan")
        store.write_metadata(self.out, rows, filtered, self.tag)
        return True

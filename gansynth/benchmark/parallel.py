"""The benchmark's classifier runs, one after another or in parallel worker processes on a CPU.

Small classifiers use two CPU threads poorly: on 2 cores one run of the demo's classifier takes 4.6 s with two
threads and 5.9 s with one, so two single-threaded runs side by side do the work of 1.6 two-threaded ones. On a CPU
``gansynth benchmark`` and ``gansynth demo`` (``workers="auto"``) start one worker process per free core (one torch
thread each); the Python API does so when asked (``workers=2`` or ``"auto"``; the calling script then needs the
``if __name__ == "__main__":`` guard that spawned processes require). On CUDA, in a torchrun job, with
``$GANSYNTH_THREADS`` set (a fixed thread count for this process) or with a single free core, the runs stay in this
process. Each run is fully determined by its arm, its seed and the shared config,
so the scores do not depend on which worker ran it or in which order (only on the thread count, through the
floating-point order of the convolutions: ``workers`` is recorded in the report).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace

import torch

from gansynth.benchmark.plan import Arm
from gansynth.classify import ClassifierConfig, evaluate_predictions, train_classifier
from gansynth.data import ImageDataset
from gansynth.errors import ConfigError, first_line
from gansynth.runtime import Runtime

Job = tuple[int, int]  # (arm index, seed)
Done = tuple[int, int, dict, float]  # (arm index, seed, test scores, wall seconds)

_STATE: dict = {}  # a worker's copy of the arms, the test set, the config and the runtime


def plan_workers(requested: int | str, runtime: Runtime, runs: int) -> int:
    """How many processes train classifiers: ``requested`` (an int >= 1, checked by the spec; capped at ``runs``),
    or for ``"auto"`` the rule in the module doc.

    Raises:
        ConfigError: ``requested`` asks for several workers off the CPU.
    """
    from gansynth.train.plan import THREADS_ENV, free_cores

    if requested != "auto":
        if requested > 1 and (runtime.device.type != "cpu" or runtime.distributed):
            raise ConfigError(
                f"workers={requested} runs classifiers in parallel CPU processes, but the device is "
                f"{runtime.device}" + (" in a torchrun job" if runtime.distributed else ""),
                hint="leave --workers out on a GPU: one process uses the whole device",
            )
        return max(1, min(requested, runs))
    if runtime.device.type != "cpu" or runtime.distributed or runs < 2 or os.environ.get(THREADS_ENV, "").strip():
        return 1
    return max(1, min(free_cores(), runs))


def run_classifiers(
    built: list[Arm],
    test_set: ImageDataset | None,
    base: ClassifierConfig,
    seeds: int,
    runtime: Runtime,
    workers: int,
    say: Callable[[str], None] = print,
) -> Iterator[Done]:
    """Train and test every (arm, seed), yielding each result as it is done (seed-major order when ``workers`` is 1).
    ``test_set`` may be None when every arm carries its own ``holdout`` images (validation runs).

    With several workers the runs go to spawned processes (one torch thread each) and come back in the order they
    finish; stopping early (Ctrl-C, an error in a run) stops the workers. Workers that cannot start (a ``__main__``
    that cannot be imported again, as with ``python - < script``) are reported through ``say`` and the remaining
    runs go on in this process.
    """
    jobs = [(index, seed) for seed in range(seeds) for index in range(len(built))]
    finished: set[Job] = set()
    if workers > 1:
        try:
            for done in _in_workers(built, test_set, base, runtime, workers, jobs):
                finished.add(done[:2])
                yield done
        except BrokenProcessPool as exc:
            say(f"note: the worker processes stopped ({first_line(exc)}); the remaining runs go on in this process")
    for index, seed in jobs:
        if (index, seed) not in finished:
            yield (index, seed, *_run(built[index], seed, test_set, base, runtime))


def _in_workers(
    built: list[Arm],
    test_set: ImageDataset | None,
    base: ClassifierConfig,
    runtime: Runtime,
    workers: int,
    jobs: list[Job],
) -> Iterator[Done]:
    """``jobs`` on a pool of ``workers`` spawned processes, results as they finish; the pool is stopped on exit."""
    context = multiprocessing.get_context("spawn")  # never fork a process whose OpenMP threads are running
    before = set(multiprocessing.active_children())
    initargs = (os.getpid(), built, test_set, base, runtime)
    pool = ProcessPoolExecutor(workers, context, initializer=_start_worker, initargs=initargs)
    try:
        futures = [pool.submit(_work, job) for job in jobs]
        for future in as_completed(futures):
            yield future.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for child in set(multiprocessing.active_children()) - before:  # a run in progress is not waited for
            child.terminate()
            child.join()


def _run(
    arm: Arm, seed: int, test_set: ImageDataset | None, base: ClassifierConfig, runtime: Runtime
) -> tuple[dict, float]:
    """One arm with one seed: train from scratch, score on the test set (``(scores, wall seconds)``), or for an arm
    with ``holdout`` images, ``({"probabilities": [M, K] float}, wall seconds)`` on those."""
    start = time.perf_counter()
    config = replace(
        base, balanced=arm.balanced, balanced_softmax=arm.balanced_softmax, mixup_alpha=arm.mixup_alpha, seed=seed
    )
    num_classes = len(arm.real_counts)  # one count per class in every arm
    classifier = train_classifier(
        arm.images, arm.labels, num_classes, config, runtime, synthetic=arm.synthetic, mixing=arm.mixing
    )
    if arm.holdout is not None:
        return {"probabilities": classifier.predict_proba(arm.holdout)}, time.perf_counter() - start
    predicted = classifier.predict(test_set.images)
    scores = evaluate_predictions(test_set.labels, predicted, test_set.class_names)
    return scores, time.perf_counter() - start


def _start_worker(
    parent: int, built: list[Arm], test_set: ImageDataset | None, base: ClassifierConfig, runtime: Runtime
) -> None:
    """A worker's setup: one torch thread, Ctrl-C left to the parent (which stops the workers), an exit of its own
    when the parent dies, the shared data."""
    from gansynth.exporter.encode import worker_init

    worker_init(parent)
    torch.set_num_threads(1)
    _STATE.update(built=built, test_set=test_set, base=base, runtime=runtime)


def _work(job: Job) -> Done:
    index, seed = job
    arm = _STATE["built"][index]
    return (index, seed, *_run(arm, seed, _STATE["test_set"], _STATE["base"], _STATE["runtime"]))


def threads_per_run(workers: int) -> int:
    """The torch threads one classifier run used: 1 in a worker, this process's count otherwise."""
    return 1 if workers > 1 else torch.get_num_threads()

"""The benchmark's classifier runs in worker processes: how many, and that they score exactly as one process does."""

from __future__ import annotations

import pytest
import torch

from gansynth.benchmark import BenchmarkSpec, parallel
from gansynth.benchmark.parallel import plan_workers, run_classifiers
from gansynth.benchmark.plan import Arm
from gansynth.classify import ClassifierConfig
from gansynth.data import load_dataset
from gansynth.errors import ConfigError
from gansynth.runtime import Runtime, cpu_runtime

pytestmark = pytest.mark.usefixtures("one_thread")


def test_explicit_workers_are_capped_at_the_runs_and_refused_off_the_cpu():
    assert plan_workers(4, cpu_runtime(), runs=3) == 3
    assert plan_workers(1, Runtime(torch.device("cuda")), runs=8) == 1
    with pytest.raises(ConfigError, match="device is cuda"):
        plan_workers(2, Runtime(torch.device("cuda")), runs=8)


def test_auto_workers_follow_the_free_cores_unless_the_threads_are_fixed(monkeypatch):
    monkeypatch.setattr("gansynth.train.plan.free_cores", lambda: 2)
    monkeypatch.delenv("GANSYNTH_THREADS", raising=False)
    assert plan_workers("auto", cpu_runtime(), runs=12) == 2
    assert plan_workers("auto", cpu_runtime(), runs=1) == 1
    assert plan_workers("auto", Runtime(torch.device("cuda")), runs=12) == 1
    monkeypatch.setenv("GANSYNTH_THREADS", "2")
    assert plan_workers("auto", cpu_runtime(), runs=12) == 1


@pytest.mark.parametrize("workers", [0, -1, 1.5, "two", True])
def test_spec_refuses_bad_worker_counts(workers):
    with pytest.raises(ConfigError, match="workers must be"):
        BenchmarkSpec(workers=workers)


def test_workers_score_every_run_exactly_as_one_process_does():
    digits = load_dataset("digits")
    train, test = digits.subset(list(range(0, 600))), digits.subset(list(range(1500, 1700)))
    arms = [
        Arm("real", train.images, train.labels, False, train.counts, [0] * 10),
        Arm("rebalanced", train.images, train.labels, True, train.counts, [0] * 10),
    ]
    config = ClassifierConfig(model="test_efficientnet", batch_size=32, steps=30, flip=False)
    alone = {(i, s): scores for i, s, scores, _ in run_classifiers(arms, test, config, 2, cpu_runtime(), 1)}
    side_by_side = {(i, s): scores for i, s, scores, _ in run_classifiers(arms, test, config, 2, cpu_runtime(), 2)}
    assert sorted(side_by_side) == sorted(alone) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for job, scores in alone.items():
        assert side_by_side[job]["balanced_accuracy"] == scores["balanced_accuracy"]
        assert side_by_side[job]["per_class_recall"] == scores["per_class_recall"]
    assert alone[0, 0]["balanced_accuracy"] != alone[0, 1]["balanced_accuracy"]  # the seed matters: runs differ


def test_workers_that_cannot_start_leave_the_runs_to_this_process(monkeypatch):
    def broken(*args):
        from concurrent.futures.process import BrokenProcessPool

        raise BrokenProcessPool("a child process terminated abruptly")
        yield

    monkeypatch.setattr(parallel, "_in_workers", broken)
    digits = load_dataset("digits")
    train, test = digits.subset(list(range(0, 200))), digits.subset(list(range(1500, 1600)))
    arms = [Arm("real", train.images, train.labels, False, train.counts, [0] * 10)]
    config = ClassifierConfig(model="test_efficientnet", batch_size=32, steps=5, flip=False)
    said: list[str] = []
    done = list(run_classifiers(arms, test, config, 2, cpu_runtime(), 2, said.append))
    assert [(i, s) for i, s, _, _ in done] == [(0, 0), (0, 1)]
    assert said and "go on in this process" in said[0]


def test_validation_folds_score_the_same_in_workers():
    """The choice's K-fold runs (arms with holdout images, no test set) give the same pooled scores in 2 workers."""
    from gansynth.benchmark.select import ValidationScorer, carve_validation
    from gansynth.mixing import NO_SYNTHETIC, Mixing

    digits = load_dataset("digits")
    train = digits.subset(list(range(0, 300)))
    synthetic = digits.subset(list(range(1500, 1700)))  # held-back real digits stand in for synthetic ones
    folds = carve_validation(train, folds=3)
    config = ClassifierConfig(model="test_efficientnet", batch_size=32, flip=False)
    mixings, add = [NO_SYNTHETIC, Mixing()], [10] * 10
    alone = ValidationScorer(folds, config, cpu_runtime(), 1, 1, synthetic, add)(mixings, 20)
    side_by_side = ValidationScorer(folds, config, cpu_runtime(), 1, 2, synthetic, add)(mixings, 20)
    assert side_by_side == alone and len(alone) == 2
    assert all(0.0 <= accuracy <= 1.0 and loss > 0 for accuracy, loss in alone)
    assert alone[0] != alone[1]  # the synthetic candidate trained on other images


def test_workers_exit_when_the_benchmark_is_killed(tmp_path):
    """kill -9 of a benchmark leaves no classifier worker behind (each watches its parent)."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from conftest import alive, wait_until

    command = [sys.executable, "-m", "gansynth", "benchmark", "digits", "--arms", "real,rebalanced", "--seeds", "3"]
    command += ["--workers", "2", "--budget", "fixed", "--quiet", "--device", "cpu", "--out", str(tmp_path / "b")]
    env = {k: v for k, v in os.environ.items() if k != "GANSYNTH_THREADS"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)

    def workers() -> list[int]:
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]

    found: list[int] = []

    def started() -> bool:
        nonlocal found
        try:
            found = workers()
        except FileNotFoundError:  # a child ended between the listing and the read
            pass
        return process.poll() is not None or len(found) >= 2

    wait_until(started, timeout=90)
    assert process.poll() is None and len(found) == 2, process.stderr.read().decode()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    wait_until(lambda: not any(alive(w) for w in found), timeout=15, poll=0.1)
    assert not [w for w in found if alive(w)]

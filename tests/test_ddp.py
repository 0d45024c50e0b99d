"""DDP with torchrun on CPU (gloo): replicas stay identical, the loss follows a 1-process run, resume continues."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from conftest import make_folder
from safetensors.torch import load_file

WORKER = Path(__file__).parent / "ddp_worker.py"


def torchrun(nproc: int, *args) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(WORKER.parent)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(nproc),
        str(WORKER),
        *map(str, args),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def losses(run: Path) -> list[float]:
    return [json.loads(line)["loss_d"] for line in (run / "log.jsonl").read_text().splitlines()]


def test_ddp_replicas_match_and_resume_continues(tmp_path):
    folder = make_folder(tmp_path / "imgs", {"a": 8, "b": 8, "c": 8})
    two, one = tmp_path / "two", tmp_path / "one"
    torchrun(2, folder, two, 0.128, 0)
    rank0, rank1 = load_file(two / "rank0.safetensors"), load_file(two / "rank1.safetensors")
    assert rank0.keys() == rank1.keys()
    differing = [k for k in rank0 if not torch.equal(rank0[k], rank1[k]) and "running" not in k]
    assert not differing, differing[:5]  # parameters, EMA (standing stats included) and aug p agree

    torchrun(1, folder, one, 0.128, 0)
    a, b = losses(two), losses(one)
    assert len(a) == len(b) == 8
    # same global batch, different noise streams: the loss curves agree within GAN-step noise
    assert abs(sum(a) / len(a) - sum(b) / len(b)) < 0.25, (a, b)

    state = json.loads((two / "train_state.json").read_text())
    torchrun(2, folder, two, 0.192, 1)
    resumed = json.loads((two / "train_state.json").read_text())
    assert resumed["step"] == state["step"] + 4 and abs(resumed["kimg"] - 0.192) < 1e-9
    rank0, rank1 = load_file(two / "rank0.safetensors"), load_file(two / "rank1.safetensors")
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0 if "running" not in k)

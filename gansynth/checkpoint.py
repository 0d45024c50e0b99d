"""Run directory I/O: config/dataset JSON, per-network safetensors, training state, journaled atomic snapshots.

Only safetensors and JSON are written or read. A snapshot is several files; it is committed through a journal
(``snapshot.pending.json``) so a crash at any instant leaves either the old snapshot or the new one, never a mix.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from gansynth import __version__
from gansynth.data.fingerprint import hash_file
from gansynth.errors import CheckpointError, ConfigError
from gansynth.io import TMP_MARK, atomic_write_json, remove_temp_files, writing
from gansynth.rundir import (  # noqa: F401 - the run's file names, re-exported for the writers
    BEST_DIR,
    BEST_RECORD,
    CONFIG,
    DATASET,
    DISCRIMINATOR,
    GENERATOR,
    GENERATOR_EMA,
    PENDING,
    SAMPLES,
    TRAIN_STATE,
    TRAIN_STATE_JSON,
    RunDir,
    damaged,
    is_run_dir,
    pending_files,
)

SCHEMA_VERSION = 1
CHECKPOINTS = ("latest", "best")  # which EMA generator a sampler loads: the last snapshot, or best/ by FID
RUNS_ROOT = Path("runs")


# --- run directories ------------------------------------------------------------------------------------------


def new_run_dir(name: str, root: Path = RUNS_ROOT) -> Path:
    """``root/name``, or ``root/name-2``, ``-3``, ... when taken."""
    candidate, i = root / name, 1
    while candidate.exists():
        i += 1
        candidate = root / f"{name}-{i}"
    return candidate


def runs_named(name: str, root: Path = RUNS_ROOT) -> list[Path]:
    """Run dirs ``root/name`` and ``root/name-<k>``, newest first."""
    if not root.is_dir():
        return []
    pattern = re.compile(rf"^{re.escape(name)}(-\d+)?$")
    found = [p for p in root.iterdir() if pattern.match(p.name) and is_run_dir(p)]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def latest_run(root: Path = RUNS_ROOT) -> Path:
    """The most recently written run under ``root`` (CheckpointError when there is none)."""
    runs = [p for p in root.iterdir() if is_run_dir(p)] if root.is_dir() else []
    if not runs:
        raise CheckpointError(
            f"no run found under {root}/", hint="train one with `gansynth fit DATA` or name the run dir"
        )
    return max(runs, key=lambda p: (p / TRAIN_STATE_JSON).stat().st_mtime if (p / TRAIN_STATE_JSON).exists() else 0)


def resolve_run(run: str | Path | None, root: Path = RUNS_ROOT) -> Path:
    """A run dir from an explicit path (checked) or the most recent one under ``root``."""
    if run is None:
        return latest_run(root)
    path = Path(run)
    if not path.exists():
        raise CheckpointError(f"run directory {path} does not exist", hint=f"runs found: {_list_runs(root)}")
    if not is_run_dir(path):
        raise CheckpointError(
            f"{path} is not a gansynth run directory (no {CONFIG} / {DATASET})", hint=f"runs found: {_list_runs(root)}"
        )
    return path


def _list_runs(root: Path) -> str:
    runs = sorted(p.name for p in root.iterdir() if is_run_dir(p)) if root.is_dir() else []
    return ", ".join(runs) if runs else f"none under {root}/"


def read_json(path: Path) -> Any:
    """A JSON file of a run, read as untrusted (bounded, a regular file inside its folder)."""
    path = Path(path)
    return RunDir(path.parent).json(path.name)


def write_run_header(run_dir: Path, config: dict, dataset_info: dict) -> None:
    with writing(run_dir):
        run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / CONFIG, {"gansynth_version": __version__, "schema_version": SCHEMA_VERSION, **config})
    atomic_write_json(run_dir / DATASET, dataset_info)


def read_config(run_dir: Path) -> dict:
    """The resolved config sections of a run (version fields dropped)."""
    return RunDir(run_dir).config()


# --- tensors ----------------------------------------------------------------------------------------------------


def tensor_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    """safetensors bytes of detached, contiguous CPU copies (shared storage is split)."""
    return st_save({k: v.detach().cpu().clone().contiguous() for k, v in tensors.items()})


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; a missing or truncated file is a CheckpointError."""
    try:
        return st_load(Path(path).read_bytes())
    except FileNotFoundError:
        raise CheckpointError(
            f"{path} is missing", hint="the run has no such checkpoint; train (or resume) first"
        ) from None
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path} is truncated or damaged ({exc})",
            hint="restore it from a backup or train again; nothing was loaded",
        ) from None


def pack(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "t") -> Any:
    """Split a nested structure into JSON and a flat tensor dict (tensors become ``{"__tensor__": key}``)."""
    if isinstance(obj, torch.Tensor):
        key = f"{prefix}{len(tensors)}"
        tensors[key] = obj
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {"__items__": [[pack(k, tensors, prefix), pack(v, tensors, prefix)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"__tuple__" if isinstance(obj, tuple) else "__list__": [pack(v, tensors, prefix) for v in obj]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot pack {type(obj).__name__}")


def unpack(meta: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`pack`."""
    if isinstance(meta, dict):
        if "__tensor__" in meta:
            return tensors[meta["__tensor__"]]
        if "__items__" in meta:
            return {unpack(k, tensors): unpack(v, tensors) for k, v in meta["__items__"]}
        if "__tuple__" in meta:
            return tuple(unpack(v, tensors) for v in meta["__tuple__"])
        return [unpack(v, tensors) for v in meta["__list__"]]
    return meta


# --- snapshots --------------------------------------------------------------------------------------------------


def _write_tmp(path: Path, data: bytes) -> Path:
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    try:
        with writing(path), open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def save_snapshot(run_dir: Path, networks: dict[str, dict[str, torch.Tensor]], state: dict[str, Any]) -> None:
    """Write weights (``{file stem: state_dict}``) and the training state as one all-or-nothing snapshot.

    ``state`` may hold tensors anywhere; they go to ``train_state.safetensors``, the rest to ``train_state.json``
    together with the sha256 of every file of the snapshot.
    """
    state_tensors: dict[str, torch.Tensor] = {}
    meta = pack(state, state_tensors)
    blobs = {f"{stem}.safetensors": tensor_bytes(sd) for stem, sd in networks.items()}
    blobs[f"{TRAIN_STATE}.safetensors"] = tensor_bytes(state_tensors)
    tmps = {name: _write_tmp(run_dir / name, data) for name, data in blobs.items()}
    hashes = {name: hash_file(tmp) for name, tmp in tmps.items()}
    record = {
        "gansynth_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "files": hashes,
        "step": state.get("step"),
        "kimg": state.get("kimg"),
        "state": meta,
    }
    tmps[TRAIN_STATE_JSON] = _write_tmp(run_dir / TRAIN_STATE_JSON, (json.dumps(record, indent=1) + "\n").encode())
    atomic_write_json(run_dir / PENDING, {name: tmp.name for name, tmp in tmps.items()})
    _commit(run_dir)


def _commit(run_dir: Path) -> None:
    """Rename the journal's temp files to their names (only files a snapshot writes: see ``pending_files``)."""
    for name, tmp in pending_files(run_dir).items():
        os.replace(tmp, run_dir / name)
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    (run_dir / PENDING).unlink()


def recover(run_dir: Path) -> None:
    """Before writing to a run (``fit --resume``): finish a snapshot whose journal was written (roll forward) and
    drop temp files of an unfinished one. Readers never call this: :class:`RunDir` reads through a journal.

    A journal naming anything but the run's own snapshot files is refused (CheckpointError), and nothing moves.
    """
    run_dir = Path(run_dir)
    if (run_dir / PENDING).exists() or (run_dir / PENDING).is_symlink():
        _commit(run_dir)
    remove_temp_files(run_dir)
    remove_temp_files(run_dir / SAMPLES)


def has_snapshot(run_dir: Path) -> bool:
    return (Path(run_dir) / TRAIN_STATE_JSON).is_file()


def load_snapshot_record(run_dir: Path) -> dict:
    """``train_state.json`` of the latest snapshot, with every file of it checked against its sha256."""
    return RunDir(run_dir).snapshot_record()


def load_train_state(run_dir: Path) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]]]:
    """(training state, ``{file stem: state_dict}`` of every network) of the latest snapshot."""
    run = RunDir(run_dir)
    record = run.snapshot_record()
    state_file = f"{TRAIN_STATE}.safetensors"
    try:
        state = unpack(record["state"], run.tensors(state_file))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise damaged(run.path / TRAIN_STATE_JSON, "holds a training state that does not unpack") from None
    if not isinstance(state, dict):
        raise damaged(run.path / TRAIN_STATE_JSON, "holds a training state that is not an object")
    networks = {name.removesuffix(".safetensors"): run.tensors(name) for name in record["files"] if name != state_file}
    return state, networks


def check_checkpoint(name: str) -> None:
    """Raise ConfigError unless ``name`` is one of :data:`CHECKPOINTS`."""
    if name not in CHECKPOINTS:
        raise ConfigError(f"unknown checkpoint {name!r}", hint=f"choices: {', '.join(CHECKPOINTS)}")


def checkpoint_sha256(run_dir: Path, stem: str = GENERATOR_EMA) -> str:
    """sha256 of a network file of the run (the export's provenance)."""
    run = RunDir(run_dir)
    if not run.exists(f"{stem}.safetensors"):
        raise CheckpointError(
            f"{run.path / stem}.safetensors is missing",
            hint="the run has no generator yet; let `gansynth fit` reach a snapshot",
        )
    return run.sha256(f"{stem}.safetensors")

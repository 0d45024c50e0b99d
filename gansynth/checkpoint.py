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
from gansynth.io import TMP_MARK, atomic_write_json, remove_temp_files

SCHEMA_VERSION = 1
CONFIG, DATASET, TRAIN_STATE, TRAIN_STATE_JSON = "config.json", "dataset.json", "train_state", "train_state.json"
GENERATOR_EMA, GENERATOR, DISCRIMINATOR = "generator_ema", "generator", "discriminator"
BEST_DIR, BEST_RECORD = "best", "metrics.json"  # best/generator_ema.safetensors + its eval record (lowest FID)
CHECKPOINTS = ("latest", "best")  # which EMA generator a sampler loads: the last snapshot, or best/ by FID
PENDING = "snapshot.pending.json"
RUNS_ROOT = Path("runs")


# --- run directories ------------------------------------------------------------------------------------------


def is_run_dir(path: Path) -> bool:
    return (Path(path) / CONFIG).is_file() and (Path(path) / DATASET).is_file()


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
    recover(path)
    return path


def _list_runs(root: Path) -> str:
    runs = sorted(p.name for p in root.iterdir() if is_run_dir(p)) if root.is_dir() else []
    return ", ".join(runs) if runs else f"none under {root}/"


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing", hint="the run directory is incomplete; train again") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc})", hint="the file is damaged; train again") from None


def write_run_header(run_dir: Path, config: dict, dataset_info: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / CONFIG, {"gansynth_version": __version__, "schema_version": SCHEMA_VERSION, **config})
    atomic_write_json(run_dir / DATASET, dataset_info)


def read_config(run_dir: Path) -> dict:
    """The resolved config sections of a run (version fields dropped)."""
    data = read_json(Path(run_dir) / CONFIG)
    if data.get("schema_version", 0) > SCHEMA_VERSION:
        raise CheckpointError(
            f"{run_dir} was written by a newer gansynth (schema {data['schema_version']})",
            hint="upgrade gansynth to read it",
        )
    return {k: v for k, v in data.items() if k not in ("gansynth_version", "schema_version")}


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
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
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
    journal = json.loads((run_dir / PENDING).read_text())
    for name, tmp_name in journal.items():
        if (run_dir / tmp_name).exists():
            os.replace(run_dir / tmp_name, run_dir / name)
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    (run_dir / PENDING).unlink()


def recover(run_dir: Path) -> None:
    """Finish a snapshot whose journal was written (roll forward) and drop temp files of an unfinished one."""
    run_dir = Path(run_dir)
    if (run_dir / PENDING).exists():
        try:
            _commit(run_dir)
        except (json.JSONDecodeError, OSError):
            (run_dir / PENDING).unlink(missing_ok=True)
    for tmp in run_dir.glob(f".*{TMP_MARK}*"):
        tmp.unlink(missing_ok=True)
    remove_temp_files(run_dir / "samples") if (run_dir / "samples").is_dir() else None


def has_snapshot(run_dir: Path) -> bool:
    return (Path(run_dir) / TRAIN_STATE_JSON).is_file()


def load_snapshot_record(run_dir: Path) -> dict:
    """``train_state.json`` of the latest snapshot, with every file of it checked against its sha256."""
    run_dir = Path(run_dir)
    recover(run_dir)
    record = read_json(run_dir / TRAIN_STATE_JSON)
    for name, digest in record.get("files", {}).items():
        path = run_dir / name
        if not path.exists():
            raise CheckpointError(
                f"{path} is missing", hint="the snapshot is incomplete; restore the file or train again"
            )
        if hash_file(path) != digest:
            raise CheckpointError(
                f"{path} does not match its recorded sha256 (truncated or modified)",
                hint="restore the file from a backup or train again; nothing was loaded",
            )
    return record


def load_train_state(run_dir: Path) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]]]:
    """(training state, ``{file stem: state_dict}`` of every network) of the latest snapshot."""
    record = load_snapshot_record(run_dir)
    state = unpack(record["state"], load_tensors(Path(run_dir) / f"{TRAIN_STATE}.safetensors"))
    networks = {
        name.removesuffix(".safetensors"): load_tensors(Path(run_dir) / name)
        for name in record["files"]
        if name != f"{TRAIN_STATE}.safetensors"
    }
    return state, networks


def check_checkpoint(name: str) -> None:
    """Raise ConfigError unless ``name`` is one of :data:`CHECKPOINTS`."""
    if name not in CHECKPOINTS:
        raise ConfigError(f"unknown checkpoint {name!r}", hint=f"choices: {', '.join(CHECKPOINTS)}")


def checkpoint_sha256(run_dir: Path, stem: str = GENERATOR_EMA) -> str:
    """sha256 of a network file of the run (the export's provenance)."""
    path = Path(run_dir) / f"{stem}.safetensors"
    if not path.exists():
        raise CheckpointError(
            f"{path} is missing", hint="the run has no generator yet; let `gansynth fit` reach a snapshot"
        )
    return hash_file(path)

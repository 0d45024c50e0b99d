"""The run directory as untrusted input: every file name of a run, and the one way to read its files.

A run directory is data that people download and share, like a model checkpoint. Reading one never writes to it;
every file read is a regular file whose resolved path lies inside the run (no symlink out of it, no device, no
FIFO); JSON is size-bounded and type-checked before anything is allocated or hashed; a safetensors file must be
exactly as long as its header says; hashing reads at most the file's size.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gansynth.errors import CheckpointError, is_int, is_number

INT64_MAX = 2**63 - 1  # counts read from a run must fit a tensor

CONFIG, DATASET, TRAIN_STATE, TRAIN_STATE_JSON = "config.json", "dataset.json", "train_state", "train_state.json"
GENERATOR_EMA, GENERATOR, DISCRIMINATOR = "generator_ema", "generator", "discriminator"
BEST_DIR, BEST_RECORD = "best", "metrics.json"  # best/generator_ema.safetensors + its eval record (lowest FID)
PENDING = "snapshot.pending.json"
SAMPLES, LOG, METRICS = "samples", "log.jsonl", "metrics.jsonl"
TMP_MARK = ".tmp-"
# The files one snapshot writes; the only names a snapshot journal may commit.
SNAPSHOT_FILES = (
    *(f"{stem}.safetensors" for stem in (GENERATOR_EMA, GENERATOR, DISCRIMINATOR, TRAIN_STATE)),
    TRAIN_STATE_JSON,
)
MAX_JSON_BYTES = 64 << 20  # the largest JSON file a run may hold (train_state.json is ~kB per parameter group)
MAX_SAFETENSORS_HEADER = 100 << 20  # safetensors' own limit on its JSON header
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def is_run_dir(path: str | Path) -> bool:
    return (Path(path) / CONFIG).is_file() and (Path(path) / DATASET).is_file()


def damaged(path: Path, why: str) -> CheckpointError:
    return CheckpointError(f"{path} {why}", hint="the run directory is damaged or was modified; nothing was loaded")


# --- files -------------------------------------------------------------------------------------------------------


def regular_file(root: Path, name: str) -> Path:
    """``root/name`` checked: a regular file whose resolved path is inside ``root`` (CheckpointError otherwise)."""
    path = root / name
    try:
        resolved = path.resolve(strict=True)
        inside = resolved.is_relative_to(root.resolve(strict=True))
        mode = resolved.stat().st_mode
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing", hint="the run directory is incomplete") from None
    except (OSError, RuntimeError) as exc:  # a symlink loop, an unreadable folder
        raise damaged(path, f"cannot be opened ({exc})") from None
    if not inside:
        raise damaged(path, "points outside the run directory (a symbolic link)")
    if not stat.S_ISREG(mode):
        raise damaged(path, "is not a regular file")
    return path


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (no FIFO blocks, no device streams forever)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise damaged(path, f"cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise damaged(path, "is not a regular file")
        if info.st_size > limit:
            raise damaged(path, f"is {info.st_size} bytes, more than the {limit} a run file of its kind may have")
        return f.read(limit + 1)[:limit]


def hash_bounded(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 hex of a regular file, reading at most the size it had when opened."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise damaged(path, f"cannot be read ({exc.strerror})") from None
    h = hashlib.sha256()
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise damaged(path, "is not a regular file")
        left = info.st_size
        while left > 0 and (block := f.read(min(chunk, left))):
            h.update(block)
            left -= len(block)
    return h.hexdigest()


def check_safetensors_size(path: Path) -> int:
    """The size a safetensors file must have (8 + header + data), checked against the file; returns it."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise damaged(path, f"is truncated ({size} bytes, no safetensors header)")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > min(MAX_SAFETENSORS_HEADER, size - 8):
            raise damaged(path, f"is truncated or not safetensors (header of {header_len} bytes in {size})")
        try:
            header = json.loads(f.read(header_len))
            end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            raise damaged(path, "has a damaged safetensors header") from None
    if 8 + header_len + end != size:
        raise damaged(path, f"is {size} bytes but its safetensors header describes {8 + header_len + end}")
    return size


# --- JSON ----------------------------------------------------------------------------------------------------------


def parse_json(path: Path, data: bytes) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc})", hint="the file is damaged; train again") from None


def check_fields(path: Path, data: Any, fields: dict[str, Callable[[Any], bool]], required: tuple[str, ...]) -> dict:
    """``data`` is an object whose listed fields pass their checks (required ones present); returns it."""
    if not isinstance(data, dict):
        raise damaged(path, f"holds {type(data).__name__}, not a JSON object")
    for key in required:
        if key not in data:
            raise damaged(path, f"has no {key!r}")
    for key, ok in fields.items():
        if key in data and not ok(data[key]):
            raise damaged(path, f"has an invalid {key!r} ({_shown(data[key])})")
    return data


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


MAX_CLASSES = 100_000
MAX_OUTPUT_SIZE = 4096  # px: the largest side sample/export resize generated images to
DATASET_FIELDS: dict[str, Callable[[Any], bool]] = {
    "class_names": lambda v: (
        isinstance(v, list)
        and 0 < len(v) <= MAX_CLASSES
        and all(isinstance(n, str) and n for n in v)
        and len(set(v)) == len(v)
    ),
    "counts": lambda v: (
        isinstance(v, dict) and all(isinstance(k, str) and is_int(c, 0, INT64_MAX) for k, c in v.items())
    ),
    "resolution": lambda v: is_int(v, 4, 1024),
    "native_size": lambda v: v is None or is_int(v, 1, MAX_OUTPUT_SIZE),
    "channels": lambda v: v in (1, 3) and not isinstance(v, bool),
    "num_images": lambda v: is_int(v, 0, INT64_MAX),
    "source": lambda v: isinstance(v, str),
    "fingerprint": lambda v: isinstance(v, str),
    "name": lambda v: isinstance(v, str),
}
SNAPSHOT_FIELDS: dict[str, Callable[[Any], bool]] = {
    "files": lambda v: (
        isinstance(v, dict)
        and all(k in SNAPSHOT_FILES and isinstance(d, str) and SHA256.match(d) for k, d in v.items())
    ),
    "step": lambda v: v is None or is_int(v, 0, INT64_MAX),
    "kimg": lambda v: v is None or is_number(v, 0),
    "schema_version": lambda v: is_int(v, 0, INT64_MAX),
}
BEST_FIELDS: dict[str, Callable[[Any], bool]] = {
    "sha256": lambda v: isinstance(v, str) and bool(SHA256.match(v)),
    "kimg": lambda v: v is None or is_number(v, 0),
}


# --- the run -----------------------------------------------------------------------------------------------------


class RunDir:
    """A run directory opened for reading: every path it holds, checked reads, no writes.

    An interrupted snapshot (a journal naming temp files not yet renamed) is read through: the journal's files are
    read where they lie, so a reader sees the new snapshot without committing it. Only ``gansynth fit --resume``
    (:func:`gansynth.checkpoint.recover`) finishes a journal on disk.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._pending = pending_files(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # names
    @property
    def best(self) -> Path:
        return self.path / BEST_DIR

    @property
    def samples(self) -> Path:
        return self.path / SAMPLES

    @property
    def metrics_log(self) -> Path:
        return self.path / METRICS

    def file(self, name: str) -> Path:
        """The checked path of a run file (a snapshot file still under its journal's temp name, if pending)."""
        return self._pending.get(name) or regular_file(self.path, name)

    def exists(self, name: str) -> bool:
        return name in self._pending or (self.path / name).exists() or (self.path / name).is_symlink()

    def json(self, name: str) -> Any:
        path = self.file(name)
        return parse_json(path, read_bounded(path, MAX_JSON_BYTES))

    def sha256(self, name: str) -> str:
        return hash_bounded(self.file(name))

    def tensor_size(self, name: str) -> int:
        """A safetensors file's size, checked against its header."""
        return check_safetensors_size(self.file(name))

    def tensors(self, name: str) -> dict:
        """A safetensors file's tensors, its size checked against its header first."""
        from gansynth.checkpoint import load_tensors

        path = self.file(name)
        check_safetensors_size(path)
        return load_tensors(path)

    # records
    def config(self) -> dict:
        """The resolved config sections (version fields dropped); values are checked by ``Config.from_dict``."""
        from gansynth.checkpoint import SCHEMA_VERSION

        path = self.path / CONFIG
        data = check_fields(path, self.json(CONFIG), {"schema_version": lambda v: is_int(v, 0, INT64_MAX)}, ())
        if data.get("schema_version", 0) > SCHEMA_VERSION:
            raise CheckpointError(
                f"{self.path} was written by a newer gansynth (schema {data['schema_version']})",
                hint="upgrade gansynth to read it",
            )
        return {k: v for k, v in data.items() if k not in ("gansynth_version", "schema_version")}

    def dataset(self) -> dict:
        """``dataset.json``: class names, counts, resolution, channels, ... (types and ranges checked)."""
        required = ("class_names", "resolution", "channels")
        return check_fields(self.path / DATASET, self.json(DATASET), DATASET_FIELDS, required)

    def has_snapshot(self) -> bool:
        return self.exists(TRAIN_STATE_JSON)

    def snapshot_record(self, verify: bool = True) -> dict:
        """``train_state.json`` of the latest snapshot; with ``verify`` every file of it matches its sha256."""
        record = check_fields(self.path / TRAIN_STATE_JSON, self.json(TRAIN_STATE_JSON), SNAPSHOT_FIELDS, ("files",))
        if verify:
            for name, digest in record["files"].items():
                self.check_sha256(name, digest)
        return record

    def best_record(self) -> dict:
        name = f"{BEST_DIR}/{BEST_RECORD}"
        return check_fields(self.path / name, self.json(name), BEST_FIELDS, ("sha256",))

    def generator_file(self, weights: str, checkpoint: str) -> tuple[str, str, float | None]:
        """``(weights file relative to the run, its sha256, its kimg)`` for a sampler: ``best/`` or the latest
        snapshot's ``<weights>.safetensors``, its bytes checked against the recorded sha256 where there is one.

        Raises:
            CheckpointError: no such file yet, or one that does not match its record.
        """
        if checkpoint == "best":
            name = f"{BEST_DIR}/{GENERATOR_EMA}.safetensors"
            if not self.exists(f"{BEST_DIR}/{BEST_RECORD}") or not self.exists(name):
                raise CheckpointError(
                    f"{self.path} has no best checkpoint ({BEST_DIR}/ is written by evaluations during fit)",
                    hint="train with --eval-kimg E (e.g. --eval-kimg 50), or use the latest checkpoint",
                )
            record = self.best_record()
            return name, self.check_sha256(name, record["sha256"]), record.get("kimg")
        name = f"{weights}.safetensors"
        if not self.exists(name):
            raise CheckpointError(
                f"{self.path} has no {name}",
                hint="the run has no snapshot yet: start it again with `gansynth fit DATA --out RUN` "
                "(a run without a snapshot is restarted, not resumed)",
            )
        if not self.exists(TRAIN_STATE_JSON):
            return name, self.sha256(name), None
        record = self.snapshot_record(verify=False)
        expected = record["files"].get(name)
        digest = self.sha256(name) if expected is None else self.check_sha256(name, expected)
        return name, digest, record.get("kimg")

    def check_sha256(self, name: str, digest: str) -> str:
        if self.sha256(name) != digest:
            raise CheckpointError(
                f"{self.path / name} does not match its recorded sha256 (truncated or modified)",
                hint="restore the file from a backup or train again; nothing was loaded",
            )
        return digest


def pending_files(run: Path) -> dict[str, Path]:
    """The files of an interrupted snapshot commit: ``{final name: temp path}`` for the temp files still there.

    The journal is untrusted: it may only name the files a snapshot writes, each as a temp file of this run
    (``.<name>.tmp-<pid>``, a regular file in the run folder itself); anything else is refused.
    """
    journal = run / PENDING
    if not (journal.exists() or journal.is_symlink()):
        return {}
    path = regular_file(run, PENDING)
    entries = parse_json(path, read_bounded(path, MAX_JSON_BYTES))
    if not isinstance(entries, dict):
        raise damaged(path, "is not a JSON object of file names")
    found = {}
    for name, tmp in entries.items():
        if name not in SNAPSHOT_FILES or not isinstance(tmp, str) or not is_temp_name(tmp, name):
            raise CheckpointError(
                f"{path} names {_shown(name)} → {_shown(tmp)}, which is not a file a snapshot writes",
                hint="a snapshot journal may only name the run's own snapshot files; the run directory was "
                "modified — delete the journal to use the last committed snapshot",
            )
        if (run / tmp).exists() or (run / tmp).is_symlink():
            found[name] = regular_file(run, tmp)
    return found


def is_temp_name(tmp: str, name: str) -> bool:
    """``tmp`` is the temp name a snapshot writes ``name`` under (one plain path component)."""
    return re.fullmatch(rf"\.{re.escape(name)}{re.escape(TMP_MARK)}\d+", tmp) is not None

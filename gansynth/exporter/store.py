"""The export folder on disk: the command identity that guards it, the unit journal that makes it resumable,
``metadata.csv`` and ``manifest.json``, and an ``ImageFolder`` that reads it back with training labels.

Layout::

    DIR/images/<folder>/<folder>-<seed>.png    the images (written by encoder workers, temp name + rename)
    DIR/metadata.csv                           file_name,label,class_name,seed[,confidence] (all shards)
    DIR/manifest.json                          provenance, written last: its presence means the export is complete
    DIR/.export/command.json                   identity of the command (what determines the content), written first
    DIR/.export/journal-<I>-of-<N>.jsonl       one line per finished unit of shard I/N: seeds, draws, scores

Hidden bookkeeping stays out of ``ImageFolder`` (which only reads ``images/``) and out of Hugging Face
``imagefolder`` (which skips hidden paths).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import unicodedata
from pathlib import Path

from gansynth import __version__
from gansynth.errors import ExportError
from gansynth.exporter.encode import TEMP_MARK, write_atomic
from gansynth.exporter.plan import ClassPlan, Unit, check_component, file_name
from gansynth.io import append_jsonl, atomic_write_json

STATE_DIR = ".export"
COMMAND_FILE = "command.json"
METADATA = "metadata.csv"
MANIFEST = "manifest.json"
IMAGES = "images"


# --- the folder and the command identity ------------------------------------------------------------------------


def prepare_out(out: Path, identity: dict, force: bool, write: bool = True) -> None:
    """Create ``out`` for the command ``identity``, or check that it holds an export of the same command.

    A folder holding another command's export is refused unless ``force``, which deletes that export (only the
    files an export writes). A non-empty folder that is not an export is refused unless ``force``, which writes
    into it and deletes nothing. ``write=False`` only checks (nothing is created or deleted).
    """
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file", hint="give a folder (it is created when missing)")
    if not write:
        if out.is_dir():
            _check_out(out, identity, force, lambda: None)
        return
    out.mkdir(parents=True, exist_ok=True)
    if _check_out(out, identity, force, lambda: remove_export(out)):
        (out / STATE_DIR).mkdir(exist_ok=True)
        atomic_write_json(out / STATE_DIR / COMMAND_FILE, {"identity": identity, "gansynth_version": __version__})


def _check_out(out: Path, identity: dict, force: bool, remove) -> bool:
    """Refuse or (``force``) ``remove()`` an incompatible folder; True when the identity file must be (re)written."""
    command = out / STATE_DIR / COMMAND_FILE
    previous = _read_identity(command)
    if previous is None and command.exists():
        if not force:
            raise ExportError(f"{command} is damaged", hint="add --force to delete that export and start again")
        remove()
    elif previous is None:
        others = sorted(p.name for p in out.iterdir() if p.name != STATE_DIR)
        if others and not force:
            raise ExportError(
                f"--out {out} is not empty and holds no gansynth export (found: {', '.join(others[:5])})",
                hint="choose an empty or new folder, or add --force to write into it anyway",
            )
    elif previous != identity:
        if not force:
            raise ExportError(
                f"--out {out} holds an export made by a different command (differs in: {_diff(previous, identity)})",
                hint="rerun the same command to finish it, choose another --out, or add --force to replace it",
            )
        remove()
    return previous != identity


def _read_identity(command: Path) -> dict | None:
    try:
        return json.loads(command.read_text())["identity"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _diff(old: dict, new: dict) -> str:
    parts = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a != b:
            shown = f"{a!r} → {b!r}"
            parts.append(f"{key} {shown}" if len(shown) <= 40 else "classes or counts" if key == "classes" else key)
    return ", ".join(parts)


def remove_export(out: Path) -> None:
    """Delete what an export writes in ``out`` (images/, metadata.csv, manifest.json, .export/) and nothing else."""
    for name in (IMAGES, STATE_DIR):
        path = out / name
        if path.is_symlink():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
    for name in (METADATA, MANIFEST):
        (out / name).unlink(missing_ok=True)


def class_folder(out: Path, folder: str) -> Path:
    """``out/images/<folder>``, created; refuses a folder name that is not one plain component or a symlink."""
    path = out / IMAGES / check_component(folder)
    if path.is_symlink() or (out / IMAGES).is_symlink():
        raise ExportError(f"{path} is a symbolic link", hint="an export writes only real folders under --out")
    path.mkdir(parents=True, exist_ok=True)
    return path


def existing_files(out: Path, folders: list[str]) -> set[str]:
    """Relative names (``images/<folder>/<file>``) of the complete files already in the class folders."""
    found = set()
    for folder in folders:
        path = out / IMAGES / folder
        if path.is_dir():
            found |= {f"{IMAGES}/{folder}/{p.name}" for p in path.iterdir() if not p.name.startswith(".")}
    return found


def remove_temp_files(out: Path, tag: str | None = None) -> None:
    """Delete leftovers of interrupted writes: those of one shard (``tag``, anywhere), or all under ``images/``."""
    pattern = f".*{TEMP_MARK}{tag}-*" if tag else f".*{TEMP_MARK}*"
    images = out / IMAGES
    found = list(images.glob(f"*/{pattern}")) if images.is_dir() else []
    found += list(out.glob(pattern)) if tag else []
    for path in found:
        if path.is_file():
            path.unlink(missing_ok=True)


# --- the unit journal -------------------------------------------------------------------------------------------


def journal_path(out: Path, shard: tuple[int, int]) -> Path:
    return out / STATE_DIR / f"journal-{shard[0]}-of-{shard[1]}.jsonl"


def append_unit(path: Path, unit: Unit, seeds: list[int], drawn: int, passed: int, scores: list[float] | None) -> None:
    """Record a finished unit (its files are all written) — one fsynced JSON line."""
    record = {"label": unit.label, "unit": unit.index, "seeds": seeds, "drawn": drawn, "passed": passed}
    if scores is not None:
        record["scores"] = [round(s, 6) for s in scores]
    append_jsonl(path, record)


def read_journals(out: Path) -> dict[tuple[int, int], dict]:
    """Finished units of every shard, keyed by ``(label, unit)``; a line torn by a crash is ignored."""
    records: dict[tuple[int, int], dict] = {}
    for path in sorted((out / STATE_DIR).glob("journal-*.jsonl")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
                records[(int(record["label"]), int(record["unit"]))] = record
            except (ValueError, KeyError, TypeError):
                continue
    return records


# --- metadata.csv -----------------------------------------------------------------------------------------------


def csv_class_name(plan: ClassPlan) -> str:
    """The class name for metadata.csv: the run's name, or its folder name when it holds control characters."""
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in plan.name):
        return plan.folder
    return plan.name


def metadata_rows(plans: list[ClassPlan], records: dict[tuple[int, int], dict], fmt: str, filtered: bool) -> list:
    """Rows of metadata.csv in (label, seed) order, from the journal of every unit."""
    rows = []
    for plan in plans:
        entries = []
        for key in sorted(k for k in records if k[0] == plan.label):
            record = records[key]
            scores = record.get("scores") or [None] * len(record["seeds"])
            entries += list(zip(record["seeds"], scores))
        for seed, score in sorted(entries):
            row = [file_name(plan.folder, seed, fmt), plan.label, csv_class_name(plan), seed]
            rows.append(row + [f"{score:.6f}"] if filtered else row)
    return rows


def write_metadata(out: Path, rows: list, filtered: bool, tag: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file_name", "label", "class_name", "seed", *(["confidence"] if filtered else [])])
    writer.writerows(rows)
    write_atomic(out / METADATA, buffer.getvalue().encode(), tag, durable=True)


def write_manifest(out: Path, manifest: dict, tag: str) -> None:
    write_atomic(out / MANIFEST, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode(), tag, True)


# --- reading an export back -------------------------------------------------------------------------------------


def image_folder(out: str | Path, **kwargs):
    """A torchvision ``ImageFolder`` over ``out/images`` whose targets are the *training* class indices.

    Plain ``ImageFolder(out / "images")`` numbers the folders it finds 0, 1, ...: that equals the training order when
    every class was exported (folder names sort in training order), but not after ``--classes`` or ``--balance-to``
    (a class that needs no top-up has no folder). This one reads the mapping from ``manifest.json``.
    ``.classes`` lists every training class (index = label). ``kwargs`` go to ``ImageFolder``.
    """
    from torchvision.datasets import ImageFolder

    out = Path(out)
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except FileNotFoundError:
        raise ExportError(f"{out} has no {MANIFEST}", hint="finish the export first (rerun its command)") from None
    folders = {c["folder"]: c["label"] for c in manifest["classes"] if c["count"] > 0}
    names = manifest["run"]["class_names"]

    class _ExportFolder(ImageFolder):
        def find_classes(self, directory):
            return list(names), dict(folders)

    return _ExportFolder(str(out / IMAGES), **kwargs)

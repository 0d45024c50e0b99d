"""The export folder on disk: the command identity that guards it, the unit journal that makes it resumable,
``images.csv`` and ``manifest.json``, and an ``ImageFolder`` that reads it back with training labels.

Layout::

    DIR/images/<folder>/<folder>-<seed>.png    the images (written by encoder workers, temp name + rename)
    DIR/images.csv                             file_name,label,class_name,seed[,confidence] (all shards)
    DIR/manifest.json                          provenance, written last: its presence means the export is complete
    DIR/.export/command.json                   identity of the command (what determines the content), written first
    DIR/.export/journal-<I>-of-<N>.jsonl       one line per finished unit of shard I/N: seeds, draws, scores

Hidden bookkeeping stays out of ``ImageFolder`` (which only reads ``images/``) and out of Hugging Face
``imagefolder`` (which skips hidden paths).

The per-image table is ``images.csv``, not ``metadata.csv``: Hugging Face ``imagefolder`` takes a ``metadata.csv``
anywhere under ``data_dir`` as the whole schema, and then its ``label`` is a plain integer column and the class
folders no longer give a ``ClassLabel``. Without one, ``load_dataset("imagefolder", data_dir=DIR)`` labels every
image by its class folder, a ``ClassLabel`` whose names are the folder names in sorted order, which
:func:`gansynth.exporter.plan.folder_names` makes the training order.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import unicodedata
from pathlib import Path

from gansynth import __version__
from gansynth.errors import ExportError
from gansynth.exporter.encode import TEMP_MARK, write_atomic
from gansynth.exporter.plan import ClassPlan, Unit, check_component, file_name
from gansynth.io import append_jsonl, atomic_write_json, writing

STATE_DIR = ".export"
COMMAND_FILE = "command.json"
METADATA = "images.csv"
LEGACY_METADATA = "metadata.csv"  # what gansynth < 0.2 wrote; removed when an export in the same folder completes
LEGACY_HEADER = "file_name,label,class_name,seed"
MANIFEST = "manifest.json"
IMAGES = "images"
FILTER_FILE = "filter.json"  # the diversity filter's near-duplicate decisions (gansynth.exporter.filter)


# --- the folder and the command identity ------------------------------------------------------------------------


def prepare_out(out: Path, identity: dict, force: bool, write: bool = True) -> None:
    """Create ``out`` for the command ``identity``, or check that it holds an export of the same command.

    A folder holding another command's export is refused unless ``force``, which deletes that export (only the
    files an export writes). A non-empty folder that is not an export is refused unless ``force``, which writes
    into it and deletes nothing. ``write=False`` only checks (nothing is created or deleted). The export's own
    folders (``images/``, ``.export/``) must be real folders: a symbolic link there is refused, so nothing is ever
    written outside ``out``.
    """
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file", hint="give a folder (it is created when missing)")
    for name in (IMAGES, STATE_DIR):
        if (out / name).is_symlink() or ((out / name).exists() and not (out / name).is_dir()):
            raise ExportError(
                f"{out / name} is a symbolic link or a file",
                hint=f"an export writes only real folders under --out: remove {out / name} or choose another --out",
            )
    if not write:
        if out.is_dir():
            _check_out(out, identity, force, lambda: None)
        return
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
    if _check_out(out, identity, force, lambda: remove_export(out)):
        with writing(out / STATE_DIR):
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
    if command.is_symlink():
        return None
    try:
        identity = json.loads(command.read_text())["identity"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return identity if isinstance(identity, dict) else None


def _diff(old: dict, new: dict) -> str:
    parts = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a != b:
            shown = f"{a!r} → {b!r}"
            parts.append(f"{key} {shown}" if len(shown) <= 40 else "classes or counts" if key == "classes" else key)
    return ", ".join(parts)


def remove_export(out: Path) -> None:
    """Delete what an export wrote in ``out`` and nothing else.

    Only files whose names the export scheme gives are deleted: ``images/<folder>/<folder>-<seed>.<ext>`` (and their
    temp files) in the class folders of the recorded command, images.csv, manifest.json and the ``.export/``
    bookkeeping. Any other file (a user's own) stays, with the folders that hold it.
    """
    identity = _read_identity(out / STATE_DIR / COMMAND_FILE)
    images = out / IMAGES
    if images.is_dir() and not images.is_symlink():
        for folder, ext in _export_folders(images, identity):
            path = images / folder
            if path.is_symlink() or not path.is_dir():
                continue
            name = re.compile(rf"^\.?{re.escape(folder)}-\d+\.({ext})({re.escape(TEMP_MARK)}[\w-]+)?$")
            for file in path.iterdir():
                if name.match(file.name) and (file.is_symlink() or file.is_file()):
                    file.unlink()
            _remove_if_empty(path)
        _remove_if_empty(images)
    state = out / STATE_DIR
    if state.is_symlink():
        state.unlink()
    elif state.is_dir():
        for file in state.iterdir():
            ours = file.name in (COMMAND_FILE, FILTER_FILE) or re.fullmatch(r"journal-\d+-of-\d+\.jsonl", file.name)
            if ours or TEMP_MARK in file.name:
                file.unlink()
        _remove_if_empty(state)
    for name in (METADATA, MANIFEST):
        (out / name).unlink(missing_ok=True)
    remove_legacy_metadata(out)


def remove_legacy_metadata(out: Path) -> None:
    """Delete a ``metadata.csv`` an older gansynth wrote (recognised by its header), which would hide the class
    labels from Hugging Face; any other ``metadata.csv`` (a user's own) stays."""
    legacy = out / LEGACY_METADATA
    if legacy.is_symlink() or not legacy.is_file():
        return
    with open(legacy, encoding="utf-8", errors="replace") as f:
        header = f.readline().strip()
    if header.startswith(LEGACY_HEADER):
        legacy.unlink()


def _export_folders(images: Path, identity: dict | None) -> list[tuple[str, str]]:
    """(class folder, extension pattern) pairs the recorded command wrote; every folder and format without one."""
    try:
        folders = [check_component(str(c[1])) for c in identity["classes"]]
        return [(f, re.escape(str(identity["format"]))) for f in folders]
    except (TypeError, KeyError, IndexError, ExportError):
        return [(p.name, "png|jpg|webp") for p in images.iterdir()]


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty: something that is not the export's is in it
        pass


def remove_empty_class_folders(out: Path, folders: list[str]) -> None:
    """Remove the class folders under ``out/images`` that hold nothing (ImageFolder refuses an empty class)."""
    for folder in folders:
        path = out / IMAGES / check_component(folder)
        if path.is_dir() and not path.is_symlink():
            _remove_if_empty(path)


def class_folder(out: Path, folder: str) -> Path:
    """``out/images/<folder>``, created; refuses a folder name that is not one plain component or a symlink."""
    path = out / IMAGES / check_component(folder)
    if path.is_symlink() or (out / IMAGES).is_symlink():
        raise ExportError(f"{path} is a symbolic link", hint="an export writes only real folders under --out")
    path.mkdir(parents=True, exist_ok=True)
    return path


def existing_files(out: Path, folders: list[str]) -> dict[str, int]:
    """Relative names (``images/<folder>/<file>``) → sizes of the regular files already in the class folders."""
    found = {}
    for folder in folders:
        path = out / IMAGES / folder
        if path.is_dir() and not path.is_symlink():
            with os.scandir(path) as entries:
                found |= {
                    f"{IMAGES}/{folder}/{e.name}": e.stat(follow_symlinks=False).st_size
                    for e in entries
                    if not e.name.startswith(".") and e.is_file(follow_symlinks=False)
                }
    return found


def unit_on_disk(existing: dict[str, int], names: list[str], record: dict | None) -> bool:
    """Every file of a journaled unit is on disk at its recorded size (a truncated copy is not trusted)."""
    if record is None:
        return False
    sizes = record.get("sizes")
    if not isinstance(sizes, list) or len(sizes) != len(names):  # a journal line of an older gansynth
        return all(name in existing for name in names)
    return all(existing.get(name) == size for name, size in zip(names, sizes))


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


def append_unit(
    path: Path,
    unit: Unit,
    seeds: list[int],
    drawn: int,
    passed: int,
    scores: list[float] | None,
    sizes: list[int],
    extra: dict | None = None,
) -> None:
    """Record a finished unit (its files are all written, ``sizes`` bytes each) — one fsynced JSON line.

    ``extra``: more keys of the record (the diversity filter's ``dropped`` counts and ``signatures``).
    """
    record = {"label": unit.label, "unit": unit.index, "seeds": seeds, "drawn": drawn, "passed": passed}
    record["sizes"] = sizes
    if scores is not None:
        record["scores"] = [round(s, 6) for s in scores]
    append_jsonl(path, {**record, **(extra or {})})


def read_journals(out: Path) -> dict[tuple[int, int], dict]:
    """Finished units of every shard, keyed by ``(label, unit)``; a line torn by a crash is ignored."""
    records: dict[tuple[int, int], dict] = {}
    state = out / STATE_DIR
    journals = [] if state.is_symlink() else sorted(p for p in state.glob("journal-*.jsonl") if not p.is_symlink())
    for path in journals:
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
                records[(int(record["label"]), int(record["unit"]))] = record
            except (ValueError, KeyError, TypeError):
                continue
    return records


# --- images.csv -------------------------------------------------------------------------------------------------


def csv_class_name(plan: ClassPlan) -> str:
    """The class name for images.csv: the run's name, or its folder name when it holds control characters."""
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in plan.name):
        return plan.folder
    return plan.name


def metadata_rows(plans: list[ClassPlan], records: dict[tuple[int, int], dict], fmt: str, filtered: bool) -> list:
    """Rows of images.csv in (label, seed) order, from the journal of every unit."""
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


def write_metadata(out: Path, rows: list, filtered: bool, tag: str, columns: list[str] | None = None) -> None:
    """Write images.csv: ``columns`` (default: path, training label, class name, seed[, confidence]) and ``rows``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns or ["file_name", "label", "class_name", "seed", *(["confidence"] if filtered else [])])
    writer.writerows(rows)
    with writing(out / METADATA):
        write_atomic(out / METADATA, buffer.getvalue().encode(), tag, durable=True)
    remove_legacy_metadata(out)


def write_manifest(out: Path, manifest: dict, tag: str) -> None:
    with writing(out / MANIFEST):
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

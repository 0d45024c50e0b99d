"""``translate.export``: every (or the first N per class) labeled domain-A image, translated into B's look, written
in the export format of ``gansynth export`` — deterministic and resumable.

Layout (the same as a synthetic export, so ``ImageFolder``, Hugging Face ``imagefolder``, ``image_folder`` and
``gansynth benchmark --synthetic`` read it)::

    DIR/images/<folder>/<folder>-<i>.png   the i-th image of the class in domain A's file order, translated
    DIR/images.csv                         file_name,label,class_name,source (source: the A file it came from)
    DIR/manifest.json                      run, checkpoint sha256, direction, per-class counts; written last
    DIR/.export/command.json               identity of the command (what determines the content)

Images are translated in units of ``translator.BATCH`` per class; a unit whose files all exist is kept (every
file is written under a temp name and renamed, so an existing file is complete), any other is written again with
the same bytes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch

from gansynth import __version__
from gansynth.errors import ConfigError, ExportError
from gansynth.exporter import plan as P
from gansynth.exporter import store
from gansynth.exporter.encode import write_images
from gansynth.exporter.progress import ProgressBar
from gansynth.images import resize
from gansynth.rundir import GENERATOR
from gansynth.sampler import check_size
from gansynth.translate.fitting import BUILTIN_A, load_domain_a
from gansynth.translate.translator import BATCH, Translator, load_translator

SCHEME = "translate-1"  # bump when the mapping (class, index) → file changes
COLUMNS = ["file_name", "label", "class_name", "source"]
TAG = "s0of1"  # the temp-file tag of an export in one shard


@dataclass(frozen=True)
class TranslateExportResult:
    """What an export call did: the folder, images per class, files written now and kept from an earlier call."""

    out: Path
    counts: dict[str, int]
    written: int
    kept: int
    seconds: float

    @property
    def manifest(self) -> Path:
        return self.out / store.MANIFEST


def export(
    run: str | Path | None = None,
    out: str | Path | None = None,
    per_class: int | None = None,
    *,
    format: str = "png",
    size: int | None = None,
    force: bool = False,
    device: str = "cpu",
    progress: bool = True,
    command_line: str | None = None,
) -> TranslateExportResult:
    """Translate domain A's labeled images (A → B) and write them with their labels.

    Args:
        run: a ``gansynth translate fit`` run (None: the most recent under ``./runs``).
        out: export folder (None: ``synthetic/<run name>``).
        per_class: the first N images of every class in A's file order (None: all of them).
        format: ``png``, ``jpg`` or ``webp``.
        size: side of the written images (None: domain B's native size when it has one, else the trained size).
        force: replace another command's export in ``out``.
        device: ``cpu``, ``cuda`` or ``auto``.
        progress: a progress bar on stderr.
        command_line: recorded in the manifest.

    Raises:
        ConfigError: a bad format, size or count (more than a class holds).
        CheckpointError: not a translation run, or a damaged one.
        ExportError: domain A changed since training, or ``out`` holds another command's export.
    """
    started = time.perf_counter()
    fmt = _check(format, per_class, size)
    from gansynth.runtime import resolve_device

    translator = load_translator(run, device=resolve_device(device))
    source = _domain_a(translator)
    plans, members = _plans(translator, source, per_class)
    size = size or translator.dataset_info["domain_b"].get("native_size") or translator.resolution
    identity = {
        "scheme": SCHEME, "checkpoint_sha256": translator.checkpoint_sha256, "direction": "A→B",
        "source_fingerprint": source.fingerprint, "classes": [[p.label, p.folder, p.count] for p in plans],
        "format": fmt, "size": size,
    }  # fmt: skip
    out = Path(out) if out is not None else Path("synthetic") / translator.run_dir.resolve().name
    store.prepare_out(out, identity, force)
    written, kept = _write_all(translator, source, plans, members, out, fmt, size, progress)
    if not (out / store.MANIFEST).exists():  # a finished export is left as it is (its manifest has a date)
        store.write_metadata(out, _rows(plans, members, source, fmt), False, TAG, columns=COLUMNS)
        store.write_manifest(out, _manifest(translator, plans, identity, command_line), TAG)
    counts = {p.name: p.count for p in plans}
    return TranslateExportResult(out, counts, written, kept, time.perf_counter() - started)


def _check(fmt: str, per_class: int | None, size: int | None) -> str:
    if str(fmt).lower() not in P.FORMATS:
        from gansynth.registry import did_you_mean

        raise ConfigError(f"unknown image format {fmt!r}", hint=did_you_mean(str(fmt), sorted(set(P.FORMATS))))
    if per_class is not None and (type(per_class) is not int or per_class < 1):
        raise ConfigError(f"--per-class {per_class!r} is out of range", hint="a count >= 1, or --all")
    check_size(size)
    return P.FORMATS[str(fmt).lower()]


def _domain_a(translator: Translator):
    """The run's domain A, loaded again and checked against the fingerprint recorded at training."""
    info = translator.dataset_info
    source = info.get("source", "")
    data = load_domain_a(source, translator.resolution)
    if data.fingerprint != info.get("fingerprint"):
        where = "the built-in fonts render differently on this machine" if source == BUILTIN_A else f"{source} changed"
        raise ExportError(
            f"domain A of {translator.run_dir} is not what the run was trained with ({where})",
            hint="restore the training folder (or export on the machine that trained the run)",
        )
    return data


def _plans(translator: Translator, source, per_class: int | None) -> tuple[list[P.ClassPlan], list[list[int]]]:
    """Per class: its plan (label, name, folder, count) and the A indices it exports, in file order."""
    names = translator.class_names
    folders = P.folder_names(names)
    members = [torch.nonzero(source.labels == k).flatten().tolist() for k in range(len(names))]
    short = [f"{n} ({len(m)})" for n, m in zip(names, members) if per_class is not None and len(m) < per_class]
    if short:
        raise ConfigError(
            f"--per-class {per_class}: class(es) {', '.join(short[:5])} have fewer images in domain A",
            hint="a translation exports at most the images a class has: lower --per-class, or use --all",
        )
    members = [m[:per_class] if per_class else m for m in members]
    plans = [P.ClassPlan(k, names[k], folders[k], len(m), len(m)) for k, m in enumerate(members)]
    return plans, members


def _write_all(translator, source, plans, members, out: Path, fmt: str, size: int, progress: bool) -> tuple[int, int]:
    """Translate and write every unit not complete on disk; returns (files written, files kept)."""
    store.remove_temp_files(out)
    existing = store.existing_files(out, [p.folder for p in plans if p.count])
    written = kept = 0
    with ProgressBar(progress, sum(p.count for p in plans)) as bar:
        for plan, indices in zip(plans, members):
            if plan.count:
                store.class_folder(out, plan.folder)
            for start in range(0, len(indices), BATCH):
                names = [P.file_name(plan.folder, i, fmt) for i in range(start, min(start + BATCH, len(indices)))]
                if all(name in existing for name in names):
                    kept += len(names)
                    bar.advance(len(names), fresh=False)
                    continue
                images = resize(translator.translate(source.images[indices[start : start + BATCH]]), size)
                array = images.permute(0, 2, 3, 1).contiguous().numpy()  # [n, H, W, C] uint8
                write_images(array, [str(out / name) for name in names], fmt, TAG)
                written += len(names)
                bar.advance(len(names))
    return written, kept


def _rows(plans, members, source, fmt: str) -> list[list]:
    rows = []
    for plan, indices in zip(plans, members):
        for i, index in enumerate(indices):
            origin = source.files[index] if source.files is not None else f"{source.source}:{index}"
            rows.append([P.file_name(plan.folder, i, fmt), plan.label, store.csv_class_name(plan), origin])
    return rows


def _manifest(translator: Translator, plans, identity: dict, command_line: str | None) -> dict:
    """The provenance of a complete export, in the layout of ``gansynth export``'s manifest where they overlap."""
    info = translator.dataset_info
    keys = ("name", "source", "fingerprint", "resolution", "channels")
    return {
        "schema_version": 1,
        "kind": "translation",
        "gansynth_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command_line": command_line,
        "direction": "A→B",
        "run": {
            "dir": str(translator.run_dir.resolve()),
            "name": translator.run_dir.resolve().name,
            "class_names": list(translator.class_names),
            "checkpoint": f"{GENERATOR}.safetensors",
            "checkpoint_sha256": translator.checkpoint_sha256,
            "kimg": translator.kimg,
            "dataset": {k: info.get(k) for k in keys},
            "domain_b": {k: info["domain_b"].get(k) for k in keys},
        },
        "num_images": sum(p.count for p in plans),
        "format": identity["format"],
        "resolution": identity["size"],
        "trained_resolution": translator.resolution,
        "channels": translator.channels["b"],
        "classes": [{"label": p.label, "name": p.name, "folder": p.folder, "count": p.count} for p in plans],
        "renamed_classes": {p.name: p.folder for p in plans if p.name != p.folder},
        "label_column": "label = domain A's class index (dataset.json class_names order)",
        "source_column": "the domain-A file each image was translated from",
        "identity": identity,
    }

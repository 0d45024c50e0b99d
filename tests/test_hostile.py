"""Hostile inputs: run directories and export folders are untrusted data, the output disk can be full, and nothing a
user made is ever deleted. Each test reproduces one probe of the hostile review (issue: hostile inputs)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import struct
import subprocess
import sys
import types
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, assert_user_error, make_folder, make_run, run_cli, tree_hashes
from PIL import Image

import gansynth
from gansynth.checkpoint import recover, save_snapshot
from gansynth.errors import CheckpointError, ConfigError, GansynthError, MetricError, OutputError
from gansynth.exporter.synthetic import SyntheticDataset
from gansynth.sampler import load_sampler

EXPORT = ["--device", "cpu", "--quiet"]


@pytest.fixture
def world(tmp_path):
    """An untrained run and, beside it, a folder of files that no command may touch."""
    run = make_run(tmp_path / "runs" / "r", ["cat", "dog", "fox"])
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("precious")
    return run, outside


def sample_args(run, tmp_path, *extra):
    return ["sample", run, "--class", "cat", "-n", "4", "--out", tmp_path / "x.png", *extra]


# --- security ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "journal",
    [
        lambda o: {str(o / "victim.txt"): "payload.txt"},  # overwrite a file anywhere
        lambda o: {"stolen.txt": str(o / "victim.txt")},  # pull a file into the run
        lambda o: {"generator_ema.safetensors": "../outside/victim.txt"},  # a snapshot name, a foreign source
        lambda o: {"config.json": ".config.json.tmp-1"},  # a run file a snapshot never writes
    ],
    ids=["absolute-target", "absolute-source", "relative-source", "not-a-snapshot-file"],
)
def test_snapshot_journal_cannot_move_files(world, tmp_path, capsys, journal):
    run, outside = world
    (run / "payload.txt").write_text("attacker")
    (run / ".config.json.tmp-1").write_text("{}")
    (run / "snapshot.pending.json").write_text(json.dumps(journal(outside)))
    before_outside, before_run = tree_hashes(outside), tree_hashes(run)
    assert_user_error(sample_args(run, tmp_path), capsys, "journal")
    with pytest.raises(CheckpointError, match="not a file a snapshot writes"):
        SyntheticDataset(run, per_class=2)[0]
    with pytest.raises(CheckpointError):
        recover(run)  # the writer's roll-forward refuses it too
    assert tree_hashes(outside) == before_outside
    assert tree_hashes(run) == before_run
    assert not (run / "stolen.txt").exists()


def test_reading_a_run_never_writes_and_reads_through_an_interrupted_snapshot(world, tmp_path, capsys, monkeypatch):
    run, _ = world
    import gansynth.checkpoint as ckpt

    networks = ckpt.load_train_state(run)[1]
    changed = {k: {n: t + 1 if t.is_floating_point() else t for n, t in sd.items()} for k, sd in networks.items()}
    monkeypatch.setattr(ckpt, "_commit", lambda run_dir: None)  # killed between the journal and the renames
    save_snapshot(run, changed, {"step": 1, "kimg": 0.5})
    monkeypatch.undo()
    pending = json.loads((run / "snapshot.pending.json").read_text())
    before = tree_hashes(run)
    sampler = load_sampler(run)
    code, _, err = run_cli(sample_args(run, tmp_path), capsys)
    assert code == 0, err
    assert tree_hashes(run) == before  # nothing committed, renamed or deleted by readers
    assert sampler.kimg == 0.5
    assert sampler.checkpoint_sha256 == ckpt.hash_file(run / pending["generator_ema.safetensors"])
    recover(run)  # the writer commits it
    assert not (run / "snapshot.pending.json").exists()
    assert load_sampler(run).checkpoint_sha256 == sampler.checkpoint_sha256


def test_samples_symlink_keeps_cleanup_inside_the_run(world):
    run, outside = world
    (outside / "nested").mkdir()
    for name in (".grid.png.tmp-1", "nested/.a.tmp-2", "b.tmp-3"):
        (outside / name).write_text("not yours")
    os.symlink(outside, run / "samples")
    before = tree_hashes(outside)
    recover(run)
    load_sampler(run)
    assert tree_hashes(outside) == before


@pytest.mark.parametrize("name", [".export", "images", ".export/journal-0-of-1.jsonl"])
def test_export_never_writes_through_a_symlink(world, tmp_path, capsys, name):
    run, outside = world
    out = tmp_path / "exp"
    (out / name).parent.mkdir(parents=True, exist_ok=True)
    target = outside / "victim.txt" if name.endswith(".jsonl") else outside
    os.symlink(target, out / name)
    before = tree_hashes(outside)
    assert_user_error(["export", run, "--per-class", "2", "--out", out, *EXPORT], capsys, "")
    assert tree_hashes(outside) == before
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]


def test_weights_symlink_to_a_device_is_refused_without_reading_it(world, tmp_path):
    run, _ = world
    (run / "generator_ema.safetensors").unlink()
    os.symlink("/dev/zero", run / "generator_ema.safetensors")
    cmd = [sys.executable, "-m", "gansynth", *map(str, sample_args(run, tmp_path))]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)  # hashing /dev/zero never ends
    assert done.returncode == 2, done.stderr
    assert "outside the run directory" in done.stderr and "Traceback" not in done.stderr


def test_safetensors_size_must_agree_with_its_header(world, tmp_path, capsys):
    run, _ = world
    path = run / "generator_ema.safetensors"
    path.write_bytes(path.read_bytes() + b"\0" * 1024)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()  # a consistent record: only the header can tell
    _edit_json(run / "train_state.json", lambda d: {**d, "files": {**d["files"], path.name: digest}})
    assert_user_error(sample_args(run, tmp_path), capsys, "safetensors header describes")


# --- data loss ---------------------------------------------------------------------------------------------------


def test_demo_never_deletes_a_users_folders(tmp_path):
    from gansynth.demo import run_demo

    out = tmp_path / "p"
    for name in ("data/mine.txt", "benchmark/notes.md"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("the user's")
    before = tree_hashes(out)
    with pytest.raises(ConfigError, match="not made by `gansynth demo`"):
        run_demo(out, progress=False)
    assert tree_hashes(out) == before


def test_export_force_deletes_only_what_an_export_wrote(world, tmp_path, capsys):
    run, _ = world
    out = tmp_path / "exp"
    code, _, err = run_cli(["export", run, "--per-class", "3", "--out", out, *EXPORT], capsys)
    assert code == 0, err
    mine = {"images/cat/mine.png": b"user", "images/notes.txt": b"user", "images/mine/a.png": b"u", "mine.csv": b"u"}
    for name, data in mine.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    code, _, err = run_cli(["export", run, "--per-class", "2", "--seed", "5", "--out", out, "--force", *EXPORT], capsys)
    assert code == 0, err
    assert {name: (out / name).read_bytes() for name in mine} == mine
    assert sorted(p.name for p in (out / "images" / "cat").iterdir()) == ["cat-5.png", "cat-6.png", "mine.png"]
    assert sorted(p.name for p in (out / "images" / "dog").iterdir()) == ["dog-10000005.png", "dog-10000006.png"]


def test_full_disk_during_the_journal_is_an_error_and_a_rerun_completes(world, tmp_path, capsys, monkeypatch):
    from gansynth.exporter import store

    run, _ = world
    out = tmp_path / "exp"
    append, calls = store.append_jsonl, []

    def full_disk(path, record):  # the second unit's line is torn by a full disk
        calls.append(record)
        if len(calls) == 2:
            with open(path, "a") as f:
                f.write(json.dumps(record)[:25])
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        append(path, record)

    monkeypatch.setattr(store, "append_jsonl", full_disk)
    args = ["export", run, "--per-class", "70", "--out", out, *EXPORT]  # 70 per class: 2 units per class
    assert_user_error(args, capsys, "free disk space")
    monkeypatch.undo()
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    assert (out / "manifest.json").exists()
    rows = (out / "images.csv").read_text().splitlines()[1:]
    assert len(rows) == 3 * 70 and len({r.split(",")[0] for r in rows}) == 3 * 70


def test_append_jsonl_ends_a_torn_line_and_reports_a_full_disk(tmp_path, monkeypatch):
    from gansynth.exporter.store import read_journals
    from gansynth.io import append_jsonl

    journal = tmp_path / ".export" / "journal-0-of-1.jsonl"
    journal.parent.mkdir()
    journal.write_text('{"label": 0, "unit": 0, "seeds": [1]}\n{"label": 0, "un')
    append_jsonl(journal, {"label": 1, "unit": 0, "seeds": [2]})
    assert set(read_journals(tmp_path)) == {(0, 0), (1, 0)}
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
    with pytest.raises(OutputError, match="No space left") as info:
        append_jsonl(journal, {"label": 2, "unit": 0, "seeds": [3]})
    assert isinstance(info.value, OSError) and "free disk space" in info.value.hint


@pytest.mark.parametrize("finished", [False, True], ids=["interrupted-copy", "finished-export"])
def test_a_truncated_image_is_not_trusted_by_its_name(world, tmp_path, capsys, finished):
    run, _ = world
    out = tmp_path / "exp"
    args = ["export", run, "--per-class", "3", "--out", out, *EXPORT]
    assert run_cli(args, capsys)[0] == 0
    victim = out / "images" / "dog" / "dog-10000001.png"
    good = victim.read_bytes()
    victim.write_bytes(good[: len(good) // 2])
    if not finished:
        (out / "manifest.json").unlink()
        (out / "images.csv").unlink()
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    assert victim.read_bytes() == good
    assert (out / "manifest.json").exists()


# --- dead ends and hangs -----------------------------------------------------------------------------------------


def tiny_fit(data, out, *extra):
    return ["fit", data, "--out", out, *TINY, "--kimg", "0.032", *extra]


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--batch-size", "100000000"], "batch_size"),
        (["--batch-size", "65536", "--resolution", "128"], "GiB"),  # memory estimate, before allocating
        (["--set", "train.kimg=inf"], "finite"),
        (["--set", "train.seed=1e20"], "train.seed"),
        (["--set", "train.seed=100000000000000000000"], "train.seed"),
        (["--set", "model.g_width=1000000000"], "model.g_width"),
    ],
)
def test_fit_refuses_absurd_sizes_before_writing(tmp_path, capsys, extra, fragment):
    data = make_folder(tmp_path / "data", {"a": 3, "b": 3})
    out = tmp_path / "run"
    assert_user_error(tiny_fit(data, out, *extra), capsys, fragment)
    assert not out.exists()


def test_a_run_that_failed_before_its_first_snapshot_starts_again(tmp_path, capsys, monkeypatch):
    from gansynth.train.trainer import Trainer

    data = make_folder(tmp_path / "data", {"a": 3, "b": 3})
    out = tmp_path / "run"

    def no_space(self, progress=True, deadline_s=None):
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "log.jsonl"))

    monkeypatch.setattr(Trainer, "train", no_space)
    assert_user_error(tiny_fit(data, out), capsys, "free disk space")
    monkeypatch.undo()
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "dataset.json"]
    # every hint says the same: start it again, without --resume
    assert "start it again" in assert_user_error(sample_args(out, tmp_path), capsys)
    assert "drop --resume" in assert_user_error(tiny_fit(data, out, "--resume"), capsys)
    code, _, err = run_cli(tiny_fit(data, out), capsys)
    assert code == 0, err
    assert (out / "train_state.json").exists()


@pytest.mark.parametrize("truncation", [0, -1, 1e-9, float("nan")])
def test_truncation_out_of_range_is_an_error_not_a_hang(tiny_run, tmp_path, truncation):
    sampler = load_sampler(tiny_run)
    with pytest.raises(ConfigError, match="truncation"):
        sampler.generate(0, 2, truncation=truncation)
    with pytest.raises(ConfigError, match="truncation"):
        SyntheticDataset(tiny_run, per_class=2, truncation=truncation)
    with pytest.raises(ConfigError, match="truncation"):
        gansynth.export(tiny_run, tmp_path / "e", per_class=2, truncation=truncation, progress=False)
    assert not (tmp_path / "e").exists()


# --- tracebacks where error:/hint: belongs -----------------------------------------------------------------------


def test_broken_files_in_the_data_folder_are_skipped_with_a_reason(tmp_path):
    data = make_folder(tmp_path / "data", {"a": 3, "b": 3})
    os.symlink("loop.png", data / "a" / "loop.png")
    os.symlink(tmp_path / "gone.png", data / "a" / "dangling.png")
    os.mkfifo(data / "b" / "pipe.png")
    dataset = gansynth.load_dataset(data, use_cache=False)
    reasons = dict(dataset.skipped)
    assert len(dataset) == 6
    assert "symbolic link" in reasons["a/dangling.png"]
    assert "cannot be read" in reasons["a/loop.png"]
    assert "not a regular file" in reasons["b/pipe.png"]


@pytest.mark.parametrize("fault", [errno.ENOSPC, errno.EROFS, errno.EACCES])
@pytest.mark.parametrize("verb", ["fit", "sample", "export"])
def test_a_full_or_read_only_disk_is_an_error(world, tmp_path, capsys, monkeypatch, verb, fault):
    run, _ = world
    data = make_folder(tmp_path / "data", {"a": 3, "b": 3})
    args = {
        "fit": tiny_fit(data, tmp_path / "new-run"),
        "sample": sample_args(run, tmp_path),
        "export": ["export", run, "--per-class", "2", "--out", tmp_path / "exp", *EXPORT],
    }[verb]
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(fault, os.strerror(fault))))
    assert_user_error(args, capsys, "")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--seed", "9223372036854775807"], "seed"),
        (["--seed", "9007199254740990", "-n", "10"], "seed"),
    ],
)
def test_sample_huge_seed(world, tmp_path, capsys, args, fragment):
    run, _ = world
    assert_user_error([*sample_args(run, tmp_path), *args], capsys, fragment)


def test_recipe_that_is_not_text(tmp_path, capsys):
    recipe = tmp_path / "binary.toml"
    recipe.write_bytes(bytes(range(256)) * 4)
    data = make_folder(tmp_path / "data", {"a": 3, "b": 3})
    assert_user_error(tiny_fit(data, tmp_path / "run", "--recipe", recipe), capsys, "text file")


def test_empty_weights_file():
    from gansynth.metrics.extractors import load_state_dict_file

    path = Path(os.devnull)
    with pytest.raises(MetricError, match="not a readable weights file"):
        load_state_dict_file(path)


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    path.write_text(json.dumps(edit(data)))


def _best(run: Path) -> None:
    (run / "best").mkdir()
    (run / "best" / "generator_ema.safetensors").write_bytes((run / "generator_ema.safetensors").read_bytes())
    (run / "best" / "metrics.json").write_text(json.dumps({"sha256": 5, "kimg": "x"}))


@pytest.mark.parametrize(
    "damage",
    [
        lambda r: _edit_json(r / "config.json", lambda d: {**d, "model": {**d["model"], "g_width": "wide"}}),
        lambda r: _edit_json(r / "config.json", lambda d: {**d, "model": {**d["model"], "g_width": 10**9}}),
        lambda r: _edit_json(r / "config.json", lambda d: {**d, "model": {**d["model"], "g_width": 1e9}}),
        lambda r: _edit_json(r / "config.json", lambda d: {**d, "model": {**d["model"], "g_width": 2048}}),
        lambda r: _edit_json(r / "config.json", lambda d: [d]),
        lambda r: _edit_json(r / "config.json", lambda d: {**d, "schema_version": "1"}),
        lambda r: _edit_json(r / "dataset.json", lambda d: {**d, "class_names": 5}),
        lambda r: _edit_json(r / "dataset.json", lambda d: {**d, "resolution": "16"}),
        lambda r: _edit_json(r / "dataset.json", lambda d: {**d, "channels": 2}),
        lambda r: _edit_json(r / "dataset.json", lambda d: {**d, "counts": {"cat": -1}}),
        lambda r: _edit_json(r / "train_state.json", lambda d: {**d, "files": []}),
        lambda r: _edit_json(r / "train_state.json", lambda d: {**d, "kimg": "late"}),
        lambda r: (r / "snapshot.pending.json").write_text("[1, 2]"),
        lambda r: (r / "snapshot.pending.json").write_text('{"generator.safetensors": 7}'),
        lambda r: (r / "train_state.json").write_bytes(b"\xff\xfe garbage"),
        lambda r: (r / "generator_ema.safetensors").write_bytes(b""),
    ],
)
def test_damaged_run_files_are_errors(world, tmp_path, capsys, damage):
    run, _ = world
    damage(run)
    assert_user_error(sample_args(run, tmp_path), capsys, "")


def test_damaged_best_record_is_an_error(world, tmp_path, capsys):
    run, _ = world
    _best(run)
    assert_user_error(sample_args(run, tmp_path, "--checkpoint", "best"), capsys, "invalid 'sha256'")


def test_evaluate_does_not_scan_a_path_dataset_json_names(world, tmp_path, capsys):
    run, _ = world
    _edit_json(run / "dataset.json", lambda d: {**d, "source": "/proc"})
    assert_user_error(["evaluate", run, "--device", "cpu"], capsys, "--data")


# --- the public API raises GansynthError for user mistakes -------------------------------------------------------


API_MISTAKES = {
    "load_sampler-device": lambda run, tmp: gansynth.load_sampler(run, device="tpu"),
    "load_sampler-device-type": lambda run, tmp: gansynth.load_sampler(run, device=3),
    "load_sampler-run-type": lambda run, tmp: gansynth.load_sampler(tmp / "nope"),
    "load_sampler-checkpoint": lambda run, tmp: gansynth.load_sampler(run, checkpoint="newest"),
    "generate-huge-seed": lambda run, tmp: gansynth.load_sampler(run).generate(0, 2, seed=2**70),
    "generate-negative-seed": lambda run, tmp: gansynth.load_sampler(run).generate(0, 2, seed=-1),
    "generate-float-class": lambda run, tmp: gansynth.load_sampler(run).generate(1.7, 2),
    "generate-float-n": lambda run, tmp: gansynth.load_sampler(run).generate(0, 2.5),
    "generate_seeds-float-labels": lambda run, tmp: gansynth.load_sampler(run).generate_seeds([1.7], [0]),
    "generate_seeds-lengths": lambda run, tmp: gansynth.load_sampler(run).generate_seeds([0, 1], [0]),
    "generate_seeds-strings": lambda run, tmp: gansynth.load_sampler(run).generate_seeds(["a"], [0]),
    "export-workers-float": lambda run, tmp: gansynth.export(run, tmp / "e", per_class=2, workers=1.5),
    "export-classes-ints": lambda run, tmp: gansynth.export(run, tmp / "e", per_class=2, classes=[0, 1]),
    "export-seed-huge": lambda run, tmp: gansynth.export(run, tmp / "e", per_class=2, seed=2**70),
    "export-per-class-str": lambda run, tmp: gansynth.export(run, tmp / "e", per_class="5"),
    "export-format": lambda run, tmp: gansynth.export(run, tmp / "e", per_class=2, format="gif"),
    "export-min-confidence-str": lambda run, tmp: gansynth.export(run, tmp / "e", per_class=2, min_confidence="0.9"),
    "synthetic-seed-huge": lambda run, tmp: SyntheticDataset(run, per_class=2, seed=2**70),
    "synthetic-classes-ints": lambda run, tmp: SyntheticDataset(run, per_class=2, classes=[0, 1]),
    "synthetic-device": lambda run, tmp: SyntheticDataset(run, per_class=2, device="tpu"),
    "fit-data-missing": lambda run, tmp: gansynth.fit(tmp / "nope"),
    "fit-unknown-option": lambda run, tmp: gansynth.fit("digits", learning_rate=1),
    "fit-kimg-str": lambda run, tmp: gansynth.fit("digits", kimg="long"),
    "evaluate-run-missing": lambda run, tmp: gansynth.evaluate(tmp / "nope"),
}


@pytest.mark.parametrize("name", list(API_MISTAKES))
def test_public_api_raises_gansynth_errors(world, tmp_path, name):
    run, _ = world
    with pytest.raises(GansynthError):
        API_MISTAKES[name](run, tmp_path)
    assert not (tmp_path / "e").exists()  # a refused export leaves no half-made folder


# --- unclear behaviour -------------------------------------------------------------------------------------------


def test_ctrl_c_during_the_demo_fit_stops_the_demo(tmp_path, capsys, monkeypatch):
    import gansynth.train.fit as fit_module

    def interrupted_fit(data, out=None, **kwargs):
        return types.SimpleNamespace(status="interrupted", run_dir=Path(out), kimg=0.1)

    monkeypatch.setattr(fit_module, "fit", interrupted_fit)
    code, out, err = run_cli(["demo", "--out", tmp_path / "demo", "--quiet"], capsys)
    assert code == 130, err
    assert "interrupted" in err
    assert not (tmp_path / "demo" / "synthetic").exists() and not (tmp_path / "demo" / "benchmark").exists()


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width`` × ``height`` (the pixel data is a stub)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)))


def test_a_huge_image_is_reported_as_too_large(tmp_path, recwarn):
    data = make_folder(tmp_path / "data", {"a": 3, "b": 3})
    _png_header_only(data / "a" / "huge.png", 30_000, 30_000)
    _png_header_only(data / "b" / "big.png", 10_000, 10_000)  # above the limit, below Pillow's error
    dataset = gansynth.load_dataset(data, use_cache=False)
    reasons = dict(dataset.skipped)
    assert "too large" in reasons["a/huge.png"] and "too large" in reasons["b/big.png"]
    assert not [w for w in recwarn if "DecompressionBomb" in type(w.message).__name__]


def test_exif_orientation_is_applied(tmp_path):
    from gansynth.data.folder import _decode

    array = np.zeros((16, 32), dtype=np.uint8)  # H 16, W 32: left half black, right half white
    array[:, 16:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "phone.jpg"
    Image.fromarray(array).save(path, exif=exif, quality=95)
    decoded = _decode(path, 1, 16)[0].astype(float)  # [16, 16]
    top, bottom = decoded[:4].mean(), decoded[-4:].mean()
    left, right = decoded[:, :4].mean(), decoded[:, -4:].mean()
    assert abs(top - bottom) > 150 and abs(left - right) < 60  # the halves are now above each other


def test_synthetic_dataset_takes_comma_separated_classes(tiny_run):
    assert SyntheticDataset(tiny_run, per_class=2, classes="fox,cat").generated_classes == ["cat", "fox"]


def test_run_files_share_one_permission(world):
    run, _ = world
    modes = {p.name: p.stat().st_mode & 0o777 for p in run.iterdir() if p.is_file()}
    assert len(set(modes.values())) == 1, modes


def test_trained_generator_still_loads_through_the_checks(world):
    run, _ = world
    images = load_sampler(run).generate(1, 3, seed=7)
    assert images.dtype == torch.uint8 and images.shape == (3, 1, 16, 16)

"""Export: exact counts, top-up, confidence filter, ImageFolder/HF loading, determinism, shards, kill -9 resume,
untrusted class names, SyntheticDataset, and every CLI user error (exit 2, error:/hint:, no traceback)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch
from conftest import alive, make_run, run_cli, wait_until
from PIL import Image

from gansynth.errors import ConfigError, ExportError
from gansynth.exporter import SEED_STRIDE, export, image_folder
from gansynth.exporter.plan import folder_names, sanitize
from gansynth.exporter.synthetic import SyntheticDataset, as_tensor

NAMES = ["cat", "dog", "fox"]


@pytest.fixture
def run3(tmp_path) -> Path:
    """3 classes, 16 px RGB, real counts 10 / 4 / 7."""
    return make_run(tmp_path / "runs" / "three", NAMES, channels=3, counts=[10, 4, 7])


def quick(run, out, **kwargs):
    kwargs.setdefault("progress", False)
    kwargs.setdefault("workers", 0)
    return export(run, out, **kwargs)


def tree(root: Path) -> dict[str, bytes]:
    """Relative path → bytes of every file under root (hidden bookkeeping included)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def images_of(root: Path) -> dict[str, bytes]:
    return {k: v for k, v in tree(root).items() if k.startswith("images/")}


def rows(out: Path) -> list[dict]:
    with open(out / "images.csv", newline="") as f:
        return list(csv.DictReader(f))


def crc_score(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """A fake classifier: a deterministic pseudo-probability per image (uniform, ~50% pass at 0.5)."""
    return torch.tensor([zlib.crc32(x.contiguous().numpy().tobytes()) % 1000 / 1000 for x in images])


def decoded_score(path: Path) -> float:
    array = torch.from_numpy(__import__("numpy").asarray(Image.open(path)).copy()).permute(2, 0, 1)
    return float(crc_score(array[None], torch.zeros(1))[0])


def no_temp_files(root: Path) -> bool:
    return not [p for p in root.rglob("*") if ".tmp-" in p.name]


# --- counts, layout, formats -------------------------------------------------------------------------------------


def test_exact_counts_layout_images_csv_and_manifest(run3, tmp_path):
    out = tmp_path / "out"
    result = quick(run3, out, per_class=7, seed=3)
    assert result.complete and result.written == 21 and result.counts == {"cat": 7, "dog": 7, "fox": 7}
    for k, name in enumerate(NAMES):
        seeds = range(3 + k * SEED_STRIDE, 3 + k * SEED_STRIDE + 7)
        assert sorted(p.name for p in (out / "images" / name).iterdir()) == sorted(f"{name}-{s}.png" for s in seeds)
    table = rows(out)
    assert [r["file_name"] for r in table][:2] == ["images/cat/cat-3.png", "images/cat/cat-4.png"]
    assert all(r["label"] == str(NAMES.index(r["class_name"])) for r in table) and len(table) == 21
    assert all((out / r["file_name"]).is_file() for r in table)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["num_images"] == 21 and manifest["seed"] == 3 and manifest["filter"] is None
    assert [c["count"] for c in manifest["classes"]] == [7, 7, 7]
    assert manifest["run"]["checkpoint_sha256"] and manifest["run"]["class_names"] == NAMES
    assert {p.name for p in out.iterdir()} == {"images", "images.csv", "manifest.json", ".export"}
    assert no_temp_files(out)


@pytest.mark.parametrize("fmt", ["jpg", "webp"])
def test_lossy_formats_decode(run3, tmp_path, fmt):
    out = tmp_path / fmt
    quick(run3, out, per_class=2, format=fmt)
    files = sorted((out / "images").rglob(f"*.{fmt}"))
    assert len(files) == 6
    for path in files:
        assert Image.open(path).convert("RGB").size == (16, 16)


def test_classes_subset_keeps_training_labels_and_seeds(run3, tmp_path):
    quick(run3, tmp_path / "all", per_class=3)
    quick(run3, tmp_path / "fox", per_class=3, classes="fox")
    assert [r["label"] for r in rows(tmp_path / "fox")] == ["2"] * 3
    assert images_of(tmp_path / "fox") == {k: v for k, v in images_of(tmp_path / "all").items() if "/fox/" in k}
    assert image_folder(tmp_path / "fox").targets == [2, 2, 2]


def test_balance_to_tops_up_to_equal_totals(run3, tmp_path):
    real = {"cat": 10, "dog": 4, "fox": 7}
    result = quick(run3, tmp_path / "max", balance_to="max")
    assert result.counts == {"cat": 0, "dog": 6, "fox": 3}
    assert {n: real[n] + c for n, c in result.counts.items()} == {"cat": 10, "dog": 10, "fox": 10}
    assert not (tmp_path / "max" / "images" / "cat").exists()  # no empty folder: ImageFolder would refuse it
    folder = image_folder(tmp_path / "max")  # labels stay the training indices although cat has no folder
    assert sorted(folder.targets) == [1] * 6 + [2] * 3 and folder.classes == NAMES
    result = quick(run3, tmp_path / "twelve", balance_to=12, min_confidence=0.5, scorer=crc_score)
    assert result.counts == {"cat": 2, "dog": 8, "fox": 5}
    assert {n: len(list((tmp_path / "twelve/images" / n).iterdir())) + real[n] for n in NAMES} == dict.fromkeys(
        NAMES, 12
    )


# --- confidence filter (fake scorer) -----------------------------------------------------------------------------


def test_min_confidence_filter_counts_scores_and_rates(run3, tmp_path):
    out = tmp_path / "f"
    result = quick(run3, out, per_class=70, min_confidence=0.5, scorer=crc_score)
    assert result.complete and result.counts == dict.fromkeys(NAMES, 70)
    table = rows(out)
    assert len(table) == 210 and all(float(r["confidence"]) >= 0.5 for r in table)
    for row in table[::7]:  # the kept files really pass: the score recomputed from the decoded PNG
        assert decoded_score(out / row["file_name"]) >= 0.5
        assert abs(decoded_score(out / row["file_name"]) - float(row["confidence"])) < 1e-6
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["filter"]["min_confidence"] == 0.5
    for entry in manifest["classes"]:
        assert 0.3 < entry["acceptance_rate"] < 0.7 and entry["drawn"] > 70
        assert result.acceptance[entry["name"]] == pytest.approx(entry["acceptance_rate"], abs=1e-6)


def test_filter_failure_names_the_class_and_keeps_the_others(run3, tmp_path):
    def never_dog(images, labels):
        return (labels != 1).float()

    with pytest.raises(ExportError) as info:
        quick(run3, tmp_path / "f", per_class=5, min_confidence=0.9, scorer=never_dog)
    assert "dog (0.0%)" in info.value.message and "cat" not in info.value.message
    assert "lower --min-confidence" in info.value.hint
    assert len(list((tmp_path / "f/images/cat").iterdir())) == 5 and not (tmp_path / "f/manifest.json").exists()


def test_min_confidence_without_domain_classifier(run3, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gansynth.metrics.domain", None)  # as if the metrics module were missing
    with pytest.raises(ExportError, match="domain classifier"):
        quick(run3, tmp_path / "f", per_class=2, min_confidence=0.5)


# --- loading the export back -------------------------------------------------------------------------------------


def test_images_load_as_imagefolder_in_training_order(run3, tmp_path):
    from torchvision.datasets import ImageFolder

    quick(run3, tmp_path / "out", per_class=4)
    folder = ImageFolder(str(tmp_path / "out" / "images"))
    assert folder.classes == NAMES and folder.class_to_idx == {n: k for k, n in enumerate(NAMES)}
    by_file = {r["file_name"]: int(r["label"]) for r in rows(tmp_path / "out")}
    for path, target in folder.samples:
        assert by_file[str(Path(path).relative_to(tmp_path / "out"))] == target


@pytest.mark.parametrize(
    "names",
    [NAMES, ["0", "1", "10", "2", "3"], ["Egyptian cat", "golden retriever", "red fox"]],
    ids=["words", "digits", "spaces"],
)
def test_export_root_loads_with_hugging_face_imagefolder_as_class_labels(tmp_path, names):
    """The real ``datasets`` client: ``label`` is a ClassLabel named by the run's classes, in training order (the
    order a folder scan gives: sorted names, so "10" comes before "2"), and every image carries its own class."""
    datasets = pytest.importorskip("datasets")
    run = make_run(tmp_path / "runs" / "r", names, channels=3, counts=[3] * len(names))
    out = tmp_path / "out"
    quick(run, out, per_class=2)
    data = datasets.load_dataset("imagefolder", data_dir=str(out), split="train", cache_dir=str(tmp_path / "hf"))
    label = data.features["label"]
    assert isinstance(label, datasets.ClassLabel) and label.names == names
    assert set(data.column_names) == {"image", "label"}  # images.csv and .export/ are not read as metadata
    by_file = {Path(r["file_name"]).name: int(r["label"]) for r in rows(out)}
    assert len(data) == 2 * len(names) == len(by_file)
    for item in data:
        seed = int(Path(item["image"].filename).stem.rsplit("-", 1)[1])
        assert item["label"] == seed // SEED_STRIDE == by_file[Path(item["image"].filename).name]
        assert item["image"].size == (16, 16)


def test_an_older_exports_metadata_csv_is_replaced_and_a_users_is_kept(run3, tmp_path):
    out = tmp_path / "out"
    quick(run3, out, per_class=2)
    (out / "metadata.csv").write_text("file_name,label,class_name,seed\nimages/cat/cat-0.png,0,cat,0\n")
    (out / "manifest.json").unlink()
    quick(run3, out, per_class=2)  # the rerun completes the export again and drops the old table
    assert not (out / "metadata.csv").exists() and (out / "images.csv").is_file()
    (out / "metadata.csv").write_text("file_name,caption\nimages/cat/cat-0.png,my own\n")
    (out / "manifest.json").unlink()
    quick(run3, out, per_class=2)
    assert (out / "metadata.csv").read_text().startswith("file_name,caption")


# --- determinism, shards, resume ---------------------------------------------------------------------------------


def test_same_arguments_give_byte_identical_exports(run3, tmp_path):
    quick(run3, tmp_path / "a", per_class=70, truncation=0.8, workers=2)
    quick(run3, tmp_path / "b", per_class=70, truncation=0.8, workers=0)
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert set(a) == set(b) and len(images_of(tmp_path / "a")) == 210
    assert all(a[k] == b[k] for k in a if k != "manifest.json")  # the manifest holds a creation time


@pytest.mark.parametrize("filtered", [False, True])
def test_shards_together_equal_the_unsharded_export(run3, tmp_path, filtered):
    kwargs = dict(per_class=70, min_confidence=0.5, scorer=crc_score) if filtered else dict(per_class=70)
    quick(run3, tmp_path / "whole", **kwargs)
    parts = []
    for i in range(3):
        result = quick(run3, tmp_path / "shared", shard=f"{i}/3", **kwargs)
        assert result.complete == (i == 2)  # the last shard assembles images.csv and manifest.json
        quick(run3, tmp_path / f"alone{i}", shard=(i, 3), **kwargs)
        parts.append(set(images_of(tmp_path / f"alone{i}")))
    assert all(not (a & b) for a in parts for b in parts if a is not b) and all(parts)
    whole = tree(tmp_path / "whole")
    assert images_of(tmp_path / "shared") == images_of(tmp_path / "whole")
    assert set().union(*parts) == set(images_of(tmp_path / "whole"))
    assert (tmp_path / "shared/images.csv").read_bytes() == whole["images.csv"]


def test_kill_9_then_rerun_completes_without_duplicates(tmp_path):
    run = make_run(tmp_path / "runs" / "big", NAMES, channels=3)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "gansynth", "export", str(run), "--per-class", "700", "--out", str(out)]
    command += ["--workers", "1", "--quiet", "--device", "cpu"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    written = lambda: (out / "images").is_dir() and sum(1 for _ in (out / "images").rglob("*.png")) >= 150  # noqa: E731
    wait_until(lambda: process.poll() is not None or written(), timeout=60, poll=0.01)
    assert process.poll() is None, process.stderr.read().decode()  # still running: kill it mid-export
    workers = [int(p) for p in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    wait_until(lambda: not any(alive(w) for w in workers), timeout=10, poll=0.1)
    assert workers and not [w for w in workers if alive(w)]
    assert not (out / "manifest.json").exists()
    (out / "images/cat/.cat-5.png.tmp-s0of1-99999").write_bytes(b"half a png")  # as a kill mid-write leaves
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "kept from an earlier run" in done.stdout
    for name in NAMES:
        files = sorted((out / "images" / name).iterdir())
        assert len(files) == 700 and all(f.name.startswith(f"{name}-") for f in files)
        for path in files:
            Image.open(path).load()  # every file decodes
    assert len(rows(out)) == 2100 and no_temp_files(out)
    quick(run, tmp_path / "clean", per_class=700, workers=2)
    assert images_of(out) == images_of(tmp_path / "clean")


def _disk_full(*args, **kwargs):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("workers", [0, 1])
def test_a_full_disk_is_a_user_error_not_a_traceback(run3, tmp_path, monkeypatch, workers):
    import gansynth.exporter.core as core

    monkeypatch.setattr(core, "write_images", _disk_full)
    with pytest.raises(ExportError, match="No space left") as info:
        quick(run3, tmp_path / "out", per_class=3, workers=workers)
    assert "free disk space" in info.value.hint


def test_other_command_into_the_folder_is_refused_unless_forced(run3, tmp_path):
    out = tmp_path / "out"
    quick(run3, out, per_class=3)
    again = quick(run3, out, per_class=3)  # the same command: nothing to do
    assert again.written == 0 and again.kept == 9 and again.complete
    with pytest.raises(ExportError, match="different command"):
        quick(run3, out, per_class=4)
    result = quick(run3, out, per_class=2, seed=5, force=True)
    assert result.complete and len(list((out / "images").rglob("*.png"))) == 6 and len(rows(out)) == 6
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty"):
        quick(run3, other, per_class=1)
    quick(run3, other, per_class=1, force=True)
    assert (other / "keep.txt").read_text() == "mine" and len(rows(other)) == 3


def test_default_out_is_synthetic_run_name(run3, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = quick(run3, None, per_class=1)
    assert result.out == Path("synthetic/three") and (tmp_path / "synthetic/three/manifest.json").is_file()


# --- untrusted class names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, folder",
    [
        ("cat", "cat"),
        ("../evil", "_evil"),
        ("/abs", "_abs"),
        ("a/b", "a_b"),
        ("..", "class-7"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("tab\there", "tab_here"),
        ("C:\\win", "C__win"),
        ("", "class-7"),
        (" .hidden. ", "hidden"),
        ("é" * 80, "é" * 50),
    ],
)
def test_sanitize(name, folder):
    assert sanitize(name, 7) == folder


def test_folder_names_keep_training_order_and_are_unique():
    assert folder_names(["a", "b"]) == ["a", "b"]
    assert folder_names(["b", "a"]) == ["0-b", "1-a"]  # would sort differently: index prefix
    assert folder_names(["a/b", "a_b"]) == ["a_b-0", "a_b-1"]
    assert len({n.casefold() for n in folder_names(["Cat", "cat", "x"])}) == 3


def test_untrusted_class_names_write_nothing_outside_out(tmp_path):
    from torchvision.datasets import ImageFolder

    names = ["../evil", "/abs", "a/b", "..", "CON", "ok"]
    run = make_run(tmp_path / "runs" / "evil", names)
    before = {p for p in tmp_path.rglob("*")}
    out = tmp_path / "box" / "out"
    quick(run, out, per_class=2, workers=2)
    new = {p for p in tmp_path.rglob("*")} - before
    assert new and all(p == out.parent or p.is_relative_to(out) for p in new)
    assert all(p.parent.parent == out / "images" for p in (out / "images").rglob("*.png"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["renamed_classes"]) == set(names)
    folder = ImageFolder(str(out / "images"))  # sorted folder order is the training order
    labels = {c["folder"]: c["label"] for c in manifest["classes"]}
    assert len(folder) == 12 and all(labels[Path(p).parent.name] == t for p, t in folder.samples)
    assert [r["class_name"] for r in rows(out)][::2] == names


# --- SyntheticDataset --------------------------------------------------------------------------------------------


def test_synthetic_dataset_matches_the_export(run3, tmp_path):
    quick(run3, tmp_path / "out", per_class=70)
    data = SyntheticDataset(run3, per_class=70, transform=as_tensor)  # exact=True: the export's bytes
    assert len(data) == 210 and data.classes == NAMES and data.class_to_idx["fox"] == 2
    for index in (0, 63, 64, 69, 70, 209):
        image, label = data[index]
        name = NAMES[index // 70]
        path = tmp_path / "out/images" / name / f"{name}-{label * SEED_STRIDE + index % 70}.png"
        assert label == index // 70 and torch.equal(image, as_tensor(Image.open(path)))
    pil, label = SyntheticDataset(run3, per_class=2, classes=["fox"])[1]
    assert isinstance(pil, Image.Image) and pil.mode == "RGB" and label == 2


def test_synthetic_dataset_same_items_in_dataloader_workers_and_processes(run3):
    data = SyntheticDataset(run3, per_class=8, transform=as_tensor, target_transform=lambda y: y * 10)
    here = torch.stack([data[i][0] for i in range(len(data))])
    loader = torch.utils.data.DataLoader(data, batch_size=5, num_workers=2)
    images, labels = zip(*loader)
    assert torch.equal(torch.cat(images), here) and torch.cat(labels).tolist() == [0] * 8 + [10] * 8 + [20] * 8
    code = (
        "import hashlib, sys; from gansynth.exporter.synthetic import SyntheticDataset, as_tensor;"
        f"d = SyntheticDataset({str(run3)!r}, per_class=8, transform=as_tensor);"
        "print(hashlib.sha256(b''.join(d[i][0].numpy().tobytes() for i in range(len(d)))).hexdigest())"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert other.stdout.strip() == hashlib.sha256(b"".join(x.numpy().tobytes() for x in here)).hexdigest()


def test_shuffled_access_generates_each_unit_once_per_process(run3):
    data = SyntheticDataset(run3, per_class=150, transform=as_tensor)  # 3 classes × 3 units of <= 64 images
    calls = []
    sampler = data._generator()
    original = sampler.generate_seeds
    sampler.generate_seeds = lambda *a, **k: calls.append(len(a[1])) or original(*a, **k)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0)).tolist()
    shuffled = {i: data[i][0] for i in order}
    assert sorted(calls) == sorted([64, 64, 22] * 3)  # every unit generated exactly once
    assert all(torch.equal(shuffled[i], data[i][0]) for i in (0, 149, 300, 449))
    tiny = SyntheticDataset(run3, per_class=150, transform=as_tensor, cache_bytes=0)
    assert torch.equal(tiny[5][0], shuffled[5]) and len(tiny._cache) == 1


def test_synthetic_dataset_rejects_bad_arguments(run3):
    with pytest.raises(ConfigError, match="unknown class"):
        SyntheticDataset(run3, per_class=2, classes=["cta"])
    with pytest.raises(ConfigError):
        SyntheticDataset(run3, per_class=0)
    with pytest.raises(IndexError):
        SyntheticDataset(run3, per_class=2)[6]


def test_public_api_survives_submodule_imports():
    import gansynth
    import gansynth.exporter.core  # noqa: F401 - a submodule import must not shadow gansynth.export

    assert callable(gansynth.export) and gansynth.SyntheticDataset is SyntheticDataset


# --- CLI ---------------------------------------------------------------------------------------------------------


def test_cli_export_writes_and_records_its_command(run3, tmp_path, capsys):
    out = tmp_path / "cli"
    code, stdout, err = run_cli(["export", run3, "--per-class", 2, "--out", out, "--quiet", "--device", "cpu"], capsys)
    assert code == 0, err
    assert "manifest:" in stdout and len(rows(out)) == 6
    assert json.loads((out / "manifest.json").read_text())["command_line"].startswith("gansynth export ")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--per-class", 0], "--per-class"),
        (["--per-class", 2, "--classes", "cta,dog"], "did you mean 'cat'"),
        (["--balance-to", 5], "largest real class (cat: 10"),
        (["--balance-to", "most"], "--balance-to"),
        (["--per-class", 2, "--balance-to", "max"], "exactly one of"),
        ([], "exactly one of"),
        (["--per-class", 2, "--shard", "3/2"], "--shard 3/2"),
        (["--per-class", 2, "--shard", "half"], "I/N"),
        (["--per-class", 2, "--format", "gif"], "image format"),
        (["--per-class", 2, "--min-confidence", 1.5], "--min-confidence"),
    ],
)
def test_cli_user_errors(run3, tmp_path, capsys, args, fragment):
    code, _, err = run_cli(["export", run3, "--out", tmp_path / "o", "--quiet", *args], capsys)
    assert code == 2 and "error:" in err and "hint:" in err and "Traceback" not in err
    assert fragment in err, err
    assert not (tmp_path / "o").exists()


def test_cli_folder_errors(run3, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(["export", run3, "--per-class", 1, "--out", tmp_path / "file", "--quiet"], capsys)
    assert code == 2 and "error:" in err and "hint:" in err and "is a file" in err and "Traceback" not in err
    quick(run3, tmp_path / "done", per_class=1)
    code, _, err = run_cli(["export", run3, "--per-class", 2, "--out", tmp_path / "done", "--quiet"], capsys)
    assert code == 2 and "different command" in err and "hint:" in err and "--force" in err and "Traceback" not in err
    (run3 / "generator_ema.safetensors").unlink()
    code, _, err = run_cli(["export", run3, "--per-class", 1, "--out", tmp_path / "new", "--quiet"], capsys)
    assert code == 2 and "error:" in err and "hint:" in err and "generator_ema" in err and "Traceback" not in err

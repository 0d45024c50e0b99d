"""Export filtering that keeps diversity: near-duplicates dropped, a collapsed class skipped and reported, wrong
labels dropped, determinism and resume kept, the CLI's --filter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import make_run
from test_export import images_of, rows, run_cli

import gansynth.sampler as sampler_module
from gansynth.data import ImageDataset
from gansynth.exporter import SEED_STRIDE, export
from gansynth.exporter.filter import FilterSettings, signatures, thresholds

NAMES = ["cat", "dog", "fox"]
PER_CLASS = 24
COPIED_SEED = 5  # the training set holds a copy of class 0's image of this seed


@pytest.fixture
def run3(tmp_path) -> Path:
    return make_run(tmp_path / "runs" / "three", NAMES, channels=3, counts=[10, 4, 7])


class Collapsed(torch.nn.Module):
    """A generator that ignores its noise for one class: every image of that class is the same."""

    def __init__(self, inner: torch.nn.Module, label: int) -> None:
        super().__init__()
        self.inner, self.label = inner, label

    def forward(self, z, y):
        z = torch.where((y == self.label).view(-1, 1), torch.full_like(z, 3.0), z)  # one atypical noise
        return self.inner(z, y)


def reference(run: Path, copy: bool = True) -> ImageDataset:
    """'Real' images drawn from the run's own generator (other seeds), 12 per class; optionally with a copy of the
    image of seed COPIED_SEED of class 0."""
    sampler = sampler_module.load_sampler(run)
    labels = torch.arange(3).repeat_interleave(12)
    seeds = [900_000 + i for i in range(len(labels))]
    images = sampler.generate_seeds(labels, seeds, size=sampler.resolution)
    if copy:
        copied = sampler.generate_seeds([0], [COPIED_SEED], size=sampler.resolution)
        images, labels = torch.cat([images, copied]), torch.cat([labels, torch.zeros(1, dtype=torch.long)])
    return ImageDataset("ref", "ref", images, labels, list(NAMES), "f" * 64)


def collapse(monkeypatch, label: int) -> None:
    original = sampler_module.load_sampler

    def load(*args, **kwargs):
        sampler = original(*args, **kwargs)
        sampler.generator = Collapsed(sampler.generator, label).eval()  # as the sampler keeps it
        return sampler

    monkeypatch.setattr(sampler_module, "load_sampler", load)


def filtered(run, out, ref, settings=None, **kwargs):
    kwargs.setdefault("classify", lambda images: torch.full((len(images),), -1))  # the label check: see below
    return export(
        run, out, PER_CLASS, progress=False, workers=0, filter=settings or FilterSettings(wrong_label=False),
        reference=ref, **kwargs,
    )  # fmt: skip


def test_thresholds_cap_sparse_classes_by_the_pooled_quantile():
    near = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 1], [2, 2], [3, 2]], dtype=torch.uint8)
    far = torch.tensor([[0, 0], [200, 0], [0, 200], [200, 200], [100, 100]], dtype=torch.uint8)
    limits = thresholds({0: near, 1: far}, FilterSettings(duplicate_quantile=0.5))
    assert limits[1] == limits[0] == pytest.approx(1.0)  # the far class's own median (141) is capped
    assert signatures(torch.full((2, 3, 16, 16), 7, dtype=torch.uint8)).shape == (2, 3 * 8 * 8)


def test_copies_of_training_images_and_of_each_other_are_dropped(run3, tmp_path, monkeypatch):
    ref = reference(run3)
    collapse(monkeypatch, 1)
    result = filtered(run3, tmp_path / "out", ref, FilterSettings(wrong_label=False, min_diversity=0.0))
    cat, dog = result.filtered["cat"], result.filtered["dog"]
    assert cat["dropped"]["near_training"] >= 1 and not cat["skipped"]
    names = {r["file_name"] for r in rows(tmp_path / "out")}
    assert f"images/cat/cat-{COPIED_SEED}.png" not in names  # the copy of a training image
    assert f"images/cat/cat-{COPIED_SEED + 1}.png" in names or cat["dropped"]["near_synthetic"]
    assert dog["kept"] == 1 and dog["dropped"]["near_synthetic"] == PER_CLASS - 1  # one of the identical images
    assert len(list((tmp_path / "out" / "images" / "dog").iterdir())) == 1
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    entry = {c["name"]: c for c in manifest["classes"]}
    assert entry["dog"]["count"] == 1 and entry["dog"]["filter"]["drawn"] == PER_CLASS
    assert sum(result.counts.values()) == len(names) == sum(r["kept"] for r in result.filtered.values())
    unfiltered = export(run3, tmp_path / "plain", PER_CLASS, progress=False, workers=0)
    assert sum(unfiltered.counts.values()) == 3 * PER_CLASS  # filter="none" (the API default) keeps all


def test_a_collapsed_class_is_skipped_and_reported(run3, tmp_path, monkeypatch, capsys):
    ref = reference(run3, copy=False)
    collapse(monkeypatch, 2)
    result = filtered(run3, tmp_path / "out", ref)
    fox = result.filtered["fox"]
    assert fox["skipped"] and fox["kept"] == fox["drawn"] == 0 and fox["diversity_ratio"] < 0.5
    assert not result.filtered["cat"]["skipped"] and result.counts["fox"] == 0
    assert not (tmp_path / "out" / "images" / "fox").exists()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["diversity_filter"]["skipped_classes"] == ["fox"]
    assert {c["name"]: c["filter"]["skipped"] for c in manifest["classes"]} == {"cat": False, "dog": False, "fox": True}
    from gansynth.exporter.filter import describe

    lines = describe(dict(enumerate(result.filtered.values())), NAMES)
    assert "fox: skipped" in lines[2] and "oversample its real images" in lines[2]


def test_wrong_labels_are_dropped_not_the_unsure(run3, tmp_path):
    ref = reference(run3, copy=False)

    def says_cat(images):
        return torch.zeros(len(images), dtype=torch.long)

    result = filtered(run3, tmp_path / "out", ref, FilterSettings(min_diversity=0.0), classify=says_cat)
    assert result.filtered["dog"]["dropped"]["wrong_label"] == PER_CLASS and result.counts["dog"] == 0
    assert result.filtered["cat"]["dropped"]["wrong_label"] == 0


def test_filtered_export_is_deterministic_and_resumes_to_the_same_bytes(run3, tmp_path, monkeypatch):
    ref = reference(run3)
    collapse(monkeypatch, 1)
    settings = FilterSettings(wrong_label=False, min_diversity=0.0)
    first = filtered(run3, tmp_path / "a", ref, settings)
    filtered(run3, tmp_path / "b", ref, settings)
    assert images_of(tmp_path / "a") == images_of(tmp_path / "b")
    assert (tmp_path / "a" / "images.csv").read_bytes() == (tmp_path / "b" / "images.csv").read_bytes()
    # interrupted after the decisions: a kept file lost, metadata and manifest not written yet
    kept = sorted((tmp_path / "b" / "images" / "cat").iterdir())[0]
    kept.unlink()
    (tmp_path / "b" / "images.csv").unlink()
    (tmp_path / "b" / "manifest.json").unlink()
    again = filtered(run3, tmp_path / "b", ref, settings)
    assert again.written > 0 and again.filtered == first.filtered
    assert images_of(tmp_path / "a") == images_of(tmp_path / "b")
    assert (tmp_path / "a" / "images.csv").read_bytes() == (tmp_path / "b" / "images.csv").read_bytes()
    assert not any(int(r["seed"]) % SEED_STRIDE == COPIED_SEED and r["label"] == "0" for r in rows(tmp_path / "b"))


def test_cli_filter_auto_notes_when_the_real_images_are_missing(run3, tmp_path, capsys):
    code, out, _ = run_cli(["export", str(run3), "--per-class", "3", "--out", str(tmp_path / "o"), "--quiet"], capsys)
    assert code == 0 and "note: not filtered" in out
    code, _, err = run_cli(
        ["export", str(run3), "--per-class", "3", "--out", str(tmp_path / "d"), "--filter", "diverse"], capsys
    )
    assert code == 2 and "error:" in err and "--filter none" in err
    code, _, err = run_cli(["export", str(run3), "--per-class", "3", "--filter", "divers"], capsys)
    assert code == 2 and "hint:" in err

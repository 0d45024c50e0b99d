"""Data stage: folder scan, messy files, mode/size handling, resolution choice, the decode cache, digits."""

import numpy as np
import pytest
import torch
from conftest import make_folder, messy_folder
from PIL import Image

from gansynth.data import describe_skipped, load_dataset
from gansynth.data import load as load_module
from gansynth.errors import ConfigError, DataError


def test_messy_folder_loads_and_reports_every_skip(tmp_path):
    ds = load_dataset(messy_folder(tmp_path / "imgs"), resolution=16)
    assert ds.class_names == ["cat", "dog"]
    assert ds.channels == 3 and ds.images.shape[1:] == (3, 16, 16) and ds.images.dtype == torch.uint8
    assert ds.counts == [4, 4]
    reasons = dict(ds.skipped)
    assert reasons["cat/empty.png"].startswith("empty")
    assert "unreadable" in reasons["cat/garbage.jpg"] and "unreadable" in reasons["dog/truncated.png"]
    assert reasons["dog/notes.txt"] == "not an image file"
    assert "loose" in reasons["loose.png"]
    assert ".DS_Store" not in reasons  # hidden files are not data
    assert "skipped 5 files" in describe_skipped(ds.skipped)


def test_alpha_is_composited_onto_white(tmp_path):
    (tmp_path / "a").mkdir()
    Image.new("RGBA", (16, 16), (0, 0, 0, 0)).save(tmp_path / "a" / "clear.png")
    Image.new("RGB", (16, 16), (10, 20, 30)).save(tmp_path / "a" / "solid.png")
    ds = load_dataset(tmp_path, resolution=16)
    assert ds.images[ds.files.index("a/clear.png")].min() == 255
    assert ds.images[ds.files.index("a/solid.png")][:, 0, 0].tolist() == [10, 20, 30]


def test_grayscale_when_every_image_is_gray_and_16bit_is_scaled(tmp_path):
    (tmp_path / "x").mkdir()
    Image.fromarray(np.full((20, 20), 65535, dtype=np.uint16)).save(tmp_path / "x" / "white16.png")
    Image.fromarray(np.full((20, 20), 0, dtype=np.uint8)).save(tmp_path / "x" / "black.png")
    Image.fromarray(np.full((20, 20), 200, dtype=np.uint16)).save(tmp_path / "x" / "dark16.png")  # 200/65535
    ds = load_dataset(tmp_path, resolution=16)
    assert ds.channels == 1
    assert ds.images[ds.files.index("x/white16.png")].min() == 255
    assert ds.images[ds.files.index("x/dark16.png")].max() == 1  # stays dark: 200 · 255 / 65535 ≈ 0.8


def test_resolution_is_chosen_from_the_data(tmp_path):
    make_folder(tmp_path / "d", {"a": 3, "b": 3}, size=40)
    assert load_dataset(tmp_path / "d").resolution == 64  # smallest supported size not below the 40 px median
    make_folder(tmp_path / "big", {"a": 3, "b": 3}, size=150)
    assert load_dataset(tmp_path / "big").resolution == 128  # the largest supported size at most


def test_second_load_uses_the_cache(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "d", {"a": 4, "b": 4})
    first = load_dataset(root, resolution=16)

    def must_not_decode(*args, **kwargs):
        raise AssertionError("decoded again despite an unchanged folder")

    monkeypatch.setattr(load_module, "decode_folder", must_not_decode)
    second = load_dataset(root, resolution=16)
    assert torch.equal(first.images, second.images) and second.fingerprint == first.fingerprint
    Image.new("RGB", (16, 16), (1, 2, 3)).save(root / "a" / "new.png")  # content changed → new key → decode
    with pytest.raises(AssertionError):
        load_dataset(root, resolution=16)


@pytest.mark.parametrize(
    "setup, fragment",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_text("x"), "is a file"),
        (lambda p: p.mkdir(), "is empty"),
        (lambda p: (p.mkdir(), Image.new("RGB", (8, 8)).save(p / "a.png")), "no class subfolders"),
    ],
)
def test_unusable_paths_raise_data_error(tmp_path, setup, fragment):
    path = tmp_path / "data"
    setup(path)
    with pytest.raises(DataError) as info:
        load_dataset(path)
    assert fragment in info.value.message and info.value.hint


def test_all_class_problems_are_reported_together(tmp_path):
    root = make_folder(tmp_path / "d", {"good": 2})
    for name in ("bad1", "bad2"):
        (root / name).mkdir()
        (root / name / "broken.png").write_bytes(b"nope")
    with pytest.raises(DataError) as info:
        load_dataset(root)
    assert "bad1" in info.value.message and "bad2" in info.value.message
    assert "classes found: bad1, bad2, good" in info.value.hint


def test_every_file_corrupt(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"junk")
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path)
    assert "readable" in info.value.message


def test_unsupported_resolution(tmp_path):
    with pytest.raises(ConfigError):
        load_dataset("digits", resolution=48)


def test_digits_builtin():
    ds = load_dataset("digits")
    assert len(ds) == 1797 and ds.num_classes == 10 and ds.images.shape[1:] == (1, 16, 16)
    assert ds.images.max() == 255 and ds.files is None
    assert load_dataset("digits", resolution=32).resolution == 32

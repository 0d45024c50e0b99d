"""Shared test fixtures: an isolated cache, tiny image folders, and run directories without training."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

THREADS = torch.get_num_threads()  # torch's default here (OMP_NUM_THREADS or one per core)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own decode/feature cache, never the user's ~/.cache; fits use a fixed thread count (not
    the cores that happen to be free), so that runs compared bit for bit train with the same threads."""
    monkeypatch.setenv("GANSYNTH_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("GANSYNTH_THREADS", str(THREADS))


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``): small classifier
    runs are faster with one, and on a shared 2-core machine two threads stall each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def wait_until(condition: Callable[[], object], timeout: float, poll: float = 0.2) -> object:
    """Poll ``condition`` until it is true or ``timeout`` seconds have passed; returns its last value. A bounded
    wait for another process (a file written, workers started), never a measurement."""
    deadline = time.monotonic() + timeout
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(poll)
    return value


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped, does not)."""
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text()
    except FileNotFoundError:
        return False


def make_folder(root: Path, counts: dict[str, int], size: int = 16, mode: str = "RGB", seed: int = 0) -> Path:
    """An ImageFolder with ``counts[class]`` random PNGs per class; class k gets a distinct mean brightness."""
    rng = np.random.default_rng(seed)
    for k, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            base = 40 + 180 * k / max(len(counts) - 1, 1)
            channels = 1 if mode == "L" else 3
            arr = np.clip(rng.normal(base, 20, (size, size, channels)), 0, 255).astype(np.uint8)
            Image.fromarray(arr[..., 0] if channels == 1 else arr, mode="L" if channels == 1 else "RGB").convert(
                mode
            ).save(root / name / f"{i:04d}.png")
    return root


def make_run(
    run_dir: Path,
    class_names: list[str],
    resolution: int = 16,
    channels: int = 1,
    arch: str = "dcgan",
    counts: list[int] | None = None,
    seed: int = 0,
) -> Path:
    """An untrained but complete run directory (config, dataset.json, one snapshot), as `gansynth fit` writes it."""
    from gansynth.checkpoint import save_snapshot, write_run_header
    from gansynth.config import Config, build_config
    from gansynth.nn import build_networks

    torch.manual_seed(seed)
    config = build_config(
        overrides=[
            f"model.arch={arch}",
            "model.g_width=32",
            "model.d_width=16",
            "model.z_dim=16",
            "model.embed_dim=8",
            f"data.resolution={resolution}",
        ]
    )
    assert isinstance(config, Config)
    g, d = build_networks(config.model, resolution, channels, len(class_names))
    counts = counts or [10] * len(class_names)
    info = {
        "name": run_dir.name,
        "source": "test",
        "class_names": class_names,
        "counts": dict(zip(class_names, counts)),
        "num_images": sum(counts),
        "resolution": resolution,
        "channels": channels,
        "fingerprint": "0" * 64,
        "skipped": 0,
    }
    write_run_header(run_dir, config.to_dict(), info)
    g.eval()
    save_snapshot(
        run_dir,
        {"generator_ema": g.state_dict(), "generator": g.state_dict(), "discriminator": d.state_dict()},
        {"step": 0, "kimg": 0.0},
    )
    return run_dir


@pytest.fixture
def tiny_run(tmp_path) -> Path:
    """An untrained 3-class 16 px grayscale run."""
    return make_run(tmp_path / "runs" / "tiny", ["cat", "dog", "fox"])


def messy_folder(root):
    """Two classes with every kind of trouble: corrupt, 0-byte, truncated, text, and many modes and sizes."""
    (root / "cat" / "nested").mkdir(parents=True)
    (root / "dog").mkdir()
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(root / "cat" / "rgb.png")
    Image.fromarray(rgb).convert("RGBA").save(root / "cat" / "rgba.png")
    Image.fromarray(rgb).convert("P").save(root / "cat" / "palette.gif.png")
    Image.fromarray(rgb).convert("CMYK").save(root / "cat" / "nested" / "cmyk.jpg")
    Image.fromarray(rgb[:, :, 0]).convert("LA").save(root / "dog" / "la.png")
    Image.fromarray((rng.integers(0, 65535, (30, 30))).astype(np.uint16)).save(root / "dog" / "deep16.png")
    Image.fromarray(rgb[:20, :50]).save(root / "dog" / "wide.bmp")
    Image.fromarray(rgb).save(root / "dog" / "photo.webp")
    (root / "cat" / "empty.png").write_bytes(b"")
    (root / "cat" / "garbage.jpg").write_bytes(b"this is not a jpeg at all")
    good = (root / "cat" / "rgb.png").read_bytes()
    (root / "dog" / "truncated.png").write_bytes(good[: len(good) // 3])
    (root / "dog" / "notes.txt").write_text("hello")
    (root / ".DS_Store").write_bytes(b"\0\0")
    (root / "loose.png").write_bytes(good)
    return root


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """`gansynth fit digits` with no other option, once per test session, in a scratch working directory."""
    from gansynth.cli import main

    cwd = tmp_path_factory.mktemp("fit-digits")
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        with pytest.raises(SystemExit) as info:
            main(["fit", "digits"])
        assert info.value.code == 0
    finally:
        os.chdir(previous)
    return cwd / "runs" / "digits"


TINY = [
    "--set", "model.arch=dcgan", "--set", "model.g_width=32", "--set", "model.d_width=16", "--set", "model.z_dim=16",
    "--set", "model.embed_dim=8", "--batch-size", "16", "--device", "cpu", "--quiet",
]  # fmt: skip
"""CLI options of a tiny, fast fit."""


def run_cli(args, capsys) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    from gansynth.cli import main

    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def assert_user_error(args, capsys, fragment: str = "") -> str:
    """The CLI exits 2 with error: and hint: (containing ``fragment``) and no traceback; returns stderr."""
    code, _, err = run_cli(args, capsys)
    assert code == 2, err
    assert "error:" in err and "hint:" in err and "Traceback" not in err, err
    assert fragment in err, err
    return err


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every regular file under ``root`` (symlinks not followed), by relative path."""
    import hashlib

    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found

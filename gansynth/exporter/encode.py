"""Image encoding and atomic file writes for the export, run inside encoder worker processes.

Kept free of torch so worker processes start in a fraction of a second. Options are fixed, so the same pixels and
the same Pillow/zlib give the same bytes.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

PNG_COMPRESS_LEVEL = 1  # zlib level: ~2x faster than Pillow's default 6 for ~15% larger files at 32 px
JPEG_QUALITY = 95  # with 4:4:4 chroma (no subsampling): small images lose too much colour with 4:2:0
WEBP_QUALITY = 95
PARENT_POLL_SECONDS = 0.5
TEMP_MARK = ".tmp-"  # same marker as gansynth.io.TMP_MARK, so remove_temp_files also finds these


def encode(image: np.ndarray, fmt: str) -> bytes:
    """``[H, W, C]`` uint8 (C = 1 or 3) → file bytes in ``fmt`` (``png``, ``jpg`` or ``webp``)."""
    pil = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
    buffer = io.BytesIO()
    if fmt == "png":
        pil.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL, optimize=False)
    elif fmt == "jpg":
        pil.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=False)
    elif fmt == "webp":
        pil.save(buffer, format="WEBP", quality=WEBP_QUALITY, method=4, lossless=False)
    else:
        raise ValueError(f"unknown image format {fmt!r}")
    return buffer.getvalue()


def temp_path(path: Path, tag: str) -> Path:
    """Hidden temp name next to ``path``; ``tag`` says which shard wrote it (``s<I>of<N>``)."""
    return path.with_name(f".{path.name}{TEMP_MARK}{tag}-{os.getpid()}")


def write_atomic(path: Path, data: bytes, tag: str, durable: bool = False) -> None:
    """Write to a temp name, then rename: after a crash a file is either absent or complete.

    Images are not fsynced (it costs ~2.5 ms per file): the rename is atomic against a killed process, which is
    what resume relies on; ``durable`` (metadata, manifest) also fsyncs. Files get the umask's permissions.
    """
    tmp = temp_path(path, tag)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def worker_init(parent: int) -> None:
    """Worker-process initializer (the export's encoders, the benchmark's classifier runs): Ctrl-C stops the main
    process (which shuts the pool down), and a worker exits on its own when its parent dies (``kill -9``): forked
    workers inherit the task queue's write end, so they would never see it close and would wait forever, and spawned
    ones were seen idling on after their parent was killed. It lives here, torch-free, so that the export's encoder
    workers start without importing torch."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def write_images(images: np.ndarray, paths: list[str], fmt: str, tag: str) -> list[int]:
    """Encode ``images`` ``[N, H, W, C]`` and write image i to ``paths[i]``; returns the file sizes. The
    worker-process job."""
    sizes = []
    for image, path in zip(images, paths):
        data = encode(image, fmt)
        write_atomic(Path(path), data, tag)
        sizes.append(len(data))
    return sizes

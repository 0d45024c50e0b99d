"""Content fingerprints that key the decoded-image cache and guard resume against a changed dataset."""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def hash_tensor(tensor: torch.Tensor, prefix: str = "") -> str:
    """sha256 hex of a tensor's dtype, shape and bytes, chained after ``prefix``."""
    h = hashlib.sha256(prefix.encode())
    t = tensor.detach().cpu().contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(np.ascontiguousarray(t.numpy()).tobytes())
    return h.hexdigest()


def hash_file(path, chunk: int = 1 << 20) -> str:
    """sha256 hex of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()

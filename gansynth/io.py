"""Atomic file writes (temp name, fsync, rename) used by every stage that writes to disk.

A full, read-only or forbidden output disk (ENOSPC, EROFS, EACCES, ...) becomes an :class:`OutputError` — a
``GansynthError`` that is also an ``OSError`` — naming the file and what to do.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

from gansynth.errors import OutputError

TMP_MARK = ".tmp-"
# errno values of a write that mean "the output place cannot take the file", not a bug: the disk's faults
# (anywhere), and a path that cannot be created (only around a write of that path)
OUTPUT_FAULTS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
DISK_ERRORS = OUTPUT_FAULTS | {errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.ENOENT}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give: mkstemp alone makes 0600 files


def output_error(path: str | Path, exc: OSError) -> OutputError:
    """An OutputError for a write to ``path`` that failed with ``exc``."""
    reason = exc.strerror or str(exc)
    hint = {
        errno.ENOSPC: "free disk space (or choose another output folder); rerunning the same command resumes",
        errno.EDQUOT: "free space in your quota (or choose another output folder); rerunning resumes",
        errno.EROFS: "the file system is read-only: choose an output folder on a writable disk",
    }.get(exc.errno, "check the output folder's permissions, or choose another output folder")
    return OutputError(f"cannot write {path}: {reason}", hint=hint)


@contextmanager
def writing(path: str | Path):
    """Turn a disk fault while writing ``path`` into an OutputError (other OSErrors pass through)."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        if exc.errno in DISK_ERRORS:
            raise output_error(path, exc) from None
        raise


def make_dirs(path: str | Path) -> Path:
    """``mkdir -p`` with a disk fault as an OutputError; returns the path."""
    path = Path(path)
    with writing(path):
        path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one.

    The file gets the permissions a plain ``open()`` would give (``0666 & ~umask``), like every other file.
    """
    path = Path(path)
    with writing(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{TMP_MARK}")
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), FILE_MODE)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def append_jsonl(path: str | Path, record: dict) -> None:
    """Append one JSON line and fsync (a crash loses at most the line being written).

    A last line torn by an earlier crash or a full disk is ended first, so it never swallows this record. A
    symbolic link is not followed: the log stays where it is named.
    """
    path = Path(path)
    with writing(path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), FILE_MODE | 0o600)
        with os.fdopen(fd, "r+b") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise OutputError(f"{path} is not a regular file", hint="remove it or choose another output folder")
            size = f.seek(0, os.SEEK_END)
            torn = size > 0 and os.pread(f.fileno(), 1, size - 1) != b"\n"
            f.write((b"\n" if torn else b"") + (json.dumps(record) + "\n").encode())
            f.flush()
            os.fsync(f.fileno())


def remove_temp_files(folder: str | Path) -> int:
    """Delete leftovers of interrupted atomic writes directly in ``folder``; returns how many.

    A symbolic link (the folder itself or an entry) is never followed: only temp files of this folder go.
    """
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return 0
    removed = 0
    for p in folder.glob(f".*{TMP_MARK}*"):
        if not p.is_symlink() and p.is_file():
            p.unlink(missing_ok=True)
            removed += 1
    return removed

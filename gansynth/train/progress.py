"""The rich progress display of ``fit``: kimg, img/s, losses, augmentation strength, latest FID, ETA."""

from __future__ import annotations

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainProgress:
    """A context manager that shows training progress in images (displayed as kimg); a no-op when disabled."""

    def __init__(self, total_images: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self.total = total_images
        self.progress = (
            Progress(
                TextColumn("[bold]fit"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[kimg]}"),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
            )
            if enabled
            else None
        )
        self.task = None

    def __enter__(self) -> TrainProgress:
        if self.progress is not None:
            self.progress.__enter__()
            self.task = self.progress.add_task("fit", total=self.total, kimg="", stats="")
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def update(self, images_seen: int, last: dict) -> None:
        if self.progress is None:
            return
        stats = " ".join(
            f"{key}={last[key]:.3g}" for key in ("img_per_s", "loss_d", "loss_g", "aug_p", "fid") if key in last
        )
        self.progress.update(
            self.task, completed=images_seen, kimg=f"{images_seen / 1000:.1f}/{self.total / 1000:.1f} kimg", stats=stats
        )

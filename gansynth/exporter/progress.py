"""The export's progress bar: images done, img/s and ETA on stderr (or nothing)."""

from __future__ import annotations

import time


class ProgressBar:
    """A rich progress bar with img/s on stderr when ``enabled``; a context manager that does nothing otherwise."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.progress = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("export"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self.task = self.progress.add_task("export", total=total, rate="")
            self.started = time.perf_counter()
            self.done = 0

    def __enter__(self) -> ProgressBar:
        if self.progress is not None:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def advance(self, count: int, fresh: bool = True) -> None:
        """Move by ``count`` images; only ``fresh`` ones (not kept from an earlier call) count towards img/s."""
        if self.progress is not None:
            self.done += count if fresh else 0
            rate = self.done / max(time.perf_counter() - self.started, 1e-9)
            self.progress.update(self.task, advance=count, rate=f"{rate:,.0f} img/s")

"""The training loop: builds networks and optimizers, runs D/G steps, EMA, adaptive augmentation, ticks and snapshots.

Training length is counted in kimg (thousands of real images shown to D, all ranks together).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gansynth.config import Config
from gansynth.data import ImageDataset
from gansynth.errors import CheckpointError, TrainingError, first_line
from gansynth.io import append_jsonl
from gansynth.nn import CONDITIONINGS, build_networks
from gansynth.rundir import DISCRIMINATOR, GENERATOR, GENERATOR_EMA, LOG
from gansynth.runtime import Runtime, seed_everything
from gansynth.train.augment import parse_policy
from gansynth.train.ema import make_ema, update_ema
from gansynth.train.losses import LOSSES
from gansynth.train.progress import TrainProgress
from gansynth.train.state import save_training_snapshot
from gansynth.train.steps import Batches, StepContext, d_step, g_step

ADA_INTERVAL = 4  # steps between adaptive-augmentation updates


@dataclass
class FitResult:
    """What a call to ``fit`` produced."""

    run_dir: Path
    kimg: float
    step: int
    status: str  # "done" | "interrupted" | "budget" (stopped at the deadline of a budget plan, resumable)
    wall_seconds: float
    images_per_second: float
    skipped_steps: int = 0
    last_tick: dict = field(default_factory=dict)
    diversity: dict = field(default_factory=dict)  # class → generated/real pixel diversity (gansynth.train.diversity)


class TickAccumulator:
    """Sums per-step device scalars between ticks without syncing the host."""

    def __init__(self, device: torch.device, images_seen: int, bad_run: torch.Tensor | None = None) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = 0
        self.bad_run = torch.zeros((), device=device) if bad_run is None else bad_run  # carried across ticks
        self.max_bad_run = torch.zeros((), device=device)
        self.start_images, self.start_time = images_seen, time.perf_counter()

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        bad = torch.maximum(stats.pop("bad_d"), stats.pop("bad_g"))
        self.bad_run = (self.bad_run + 1) * bad
        self.max_bad_run = torch.maximum(self.max_bad_run, self.bad_run)
        stats["bad"] = bad
        for k, v in stats.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
        self.steps += 1

    def summary(self, runtime: Runtime) -> tuple[dict[str, float], int, int]:
        """(mean of each stat over steps and ranks, non-finite steps, longest run of consecutive non-finite steps)."""
        keys = sorted(self.sums)
        if keys:
            stacked = runtime.all_reduce_mean(torch.stack([self.sums[k].float() for k in keys]))
            self.sums = dict(zip(keys, stacked.unbind()))
        runtime.all_reduce_max(self.max_bad_run)
        values = {k: float(v) for k, v in self.sums.items()}
        bad = int(values.pop("bad", 0))
        return {k: v / max(self.steps, 1) for k, v in values.items()}, bad, int(self.max_bad_run)

    def images_per_second(self, images_seen: int) -> float:
        return (images_seen - self.start_images) / max(time.perf_counter() - self.start_time, 1e-9)


class Trainer:
    """Owns the networks, optimizers and counters of one run.

    Args:
        config: the resolved config (``augment.enabled`` and ``data.resolution`` already decided).
        dataset: the training images.
        runtime: device, precision, compile, DDP.
        run_dir: where snapshots go.
        evaluator: optional ``(trainer) -> dict`` called every ``eval.every_kimg`` (metrics record).
    """

    def __init__(
        self,
        config: Config,
        dataset: ImageDataset,
        runtime: Runtime,
        run_dir: Path,
        evaluator: Callable[[Trainer], dict] | None = None,
    ) -> None:
        self.config, self.dataset, self.runtime, self.run_dir = config, dataset, runtime, run_dir
        self.evaluator = evaluator
        t, m = config.train, config.model
        if t.batch_size % runtime.world_size:
            raise TrainingError(
                f"train.batch_size = {t.batch_size} is not divisible by {runtime.world_size} processes",
                hint="use a global batch size that is a multiple of the process count",
            )
        self.local_batch = t.batch_size // runtime.world_size
        seed_everything(t.seed)  # identical initial weights on every rank
        self.g_raw, self.d_raw = build_networks(m, dataset.resolution, dataset.channels, dataset.num_classes)
        self.g_raw, self.d_raw = runtime.prepare(self.g_raw), runtime.prepare(self.d_raw)
        self.ema = make_ema(self.g_raw)
        self.loss = LOSSES.get(t.loss)
        self.opt_g = runtime.adam(self.g_raw.parameters(), t.g_lr, t.g_betas)
        self.opt_d = runtime.adam(self.d_raw.parameters(), t.d_lr, t.d_betas)
        self.scaler = runtime.make_scaler()
        self.gen = runtime.generator(t.seed * 1000 + runtime.rank)  # per-rank stream: batches, noise, augmentation
        aug = config.augment
        self.p = torch.tensor(aug.p if aug.enabled else 0.0, device=runtime.device)
        self.ada_sum = torch.zeros((), device=runtime.device)
        self.lecam_anchors = torch.zeros(2, device=runtime.device)
        self.batches = Batches(
            dataset.images.to(runtime.device),
            dataset.labels.to(runtime.device),
            dataset.num_classes,
            config.data.balance == "class",
            m.z_dim,
        )
        self.step, self.images_seen, self.skipped_steps, self.elapsed = 0, 0, 0, 0.0
        self.best_fid: float | None = None
        self.latest_eval: dict = {}  # the newest evaluation's FID, merged into every tick's display record
        self._stop_signal: int | None = None
        self.ctx = self._step_context(parse_policy(aug.policy) if aug.enabled else [])

    def _step_context(self, ops) -> StepContext:
        rt, t = self.runtime, self.config.train
        g = rt.compile_module(rt.wrap_ddp(self.g_raw))
        d = rt.compile_module(rt.wrap_ddp(self.d_raw))
        return StepContext(
            g=g,
            g_frozen=rt.compile_module(self.g_raw) if rt.distributed else g,
            d=d,
            d_frozen=rt.compile_module(self.d_raw) if rt.distributed else d,
            g_params=list(self.g_raw.parameters()),
            opt_g=self.opt_g,
            opt_d=self.opt_d,
            scaler=self.scaler,
            loss=self.loss,
            ops=ops,
            p=self.p,
            runtime=rt,
            acgan_weight=t.acgan_weight,
            acgan_fakes=CONDITIONINGS.get(self.config.model.conditioning).classifier_fakes,
            gp_weight=t.gp_weight,
            lecam_weight=t.lecam_weight,
            lecam_decay=t.lecam_decay,
            lecam_anchors=self.lecam_anchors,
            gsr_weight=t.gsr_weight,
            ms_weight=t.ms_weight,
            g_raw=self.g_raw,
        )

    @property
    def kimg(self) -> float:
        return self.images_seen / 1000.0

    # --- state ------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything besides the network weights that exact resume needs (tensors allowed anywhere)."""
        return {
            "step": self.step,
            "images_seen": self.images_seen,
            "kimg": self.kimg,
            "elapsed_s": self.elapsed,
            "skipped_steps": self.skipped_steps,
            "best_fid": self.best_fid,
            "optimizer_g": self.opt_g.state_dict(),
            "optimizer_d": self.opt_d.state_dict(),
            "scaler": self.scaler.state_dict(),
            "aug_p": self.p.detach().clone(),
            "ada_sum": self.ada_sum.detach().clone(),
            "lecam_anchors": self.lecam_anchors.detach().clone(),
            "rng": self.gen.get_state(),
            "rng_cpu": torch.get_rng_state(),
            "world_size": self.runtime.world_size,
        }

    def load_state_dict(self, state: dict, networks: dict[str, dict[str, torch.Tensor]]) -> None:
        """Load a snapshot into a freshly built trainer (same config and dataset)."""
        try:
            self.g_raw.load_state_dict(networks[GENERATOR])
            self.d_raw.load_state_dict(networks[DISCRIMINATOR])
            self.ema.load_state_dict(networks[GENERATOR_EMA])
            self.opt_g.load_state_dict(state["optimizer_g"])
            self.opt_d.load_state_dict(state["optimizer_d"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(
                f"the snapshot in {self.run_dir} does not fit this config ({first_line(exc)})",
                hint="resume with the run's own settings, or start a new run without --resume",
            ) from None
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.p.copy_(state["aug_p"])
        self.ada_sum.copy_(state["ada_sum"])
        if "lecam_anchors" in state:  # snapshots from before LeCam have none (and trained without it)
            self.lecam_anchors.copy_(state["lecam_anchors"])
        if state.get("world_size", 1) == self.runtime.world_size:
            self.gen.set_state(state["rng"])
        else:  # another process count: same weights and counters, a fresh per-rank noise stream
            self.gen.manual_seed(self.config.train.seed * 1000 + self.runtime.rank + state["step"])
        torch.set_rng_state(state["rng_cpu"])
        self.step, self.images_seen = int(state["step"]), int(state["images_seen"])
        self.elapsed, self.skipped_steps = float(state["elapsed_s"]), int(state["skipped_steps"])
        self.best_fid = state.get("best_fid")

    def snapshot(self) -> None:
        """Save weights, EMA, optimizers, RNG and counters (rank 0 writes; every rank computes the same EMA stats)."""
        save_training_snapshot(self)

    # --- loop -------------------------------------------------------------------------------------------------

    def _ema_beta(self) -> float:
        t = self.config.train
        if self.kimg < t.ema_start_kimg or t.ema_kimg == 0:
            return 0.0
        return 0.5 ** (self.config.train.batch_size / (t.ema_kimg * 1000.0))

    def _adapt_augmentation(self, d_real_sign: torch.Tensor) -> None:
        aug = self.config.augment
        self.ada_sum += d_real_sign
        if aug.ada_target <= 0 or not aug.enabled or self.step % ADA_INTERVAL:
            return
        rt = self.runtime.all_reduce_mean(self.ada_sum / ADA_INTERVAL)
        adjust = torch.sign(rt - aug.ada_target) * (self.config.train.batch_size * ADA_INTERVAL) / (aug.ada_kimg * 1000)
        self.p.copy_((self.p + adjust).clamp(0.0, 1.0))
        self.ada_sum.zero_()

    def train_step(self) -> dict[str, torch.Tensor]:
        """``d_steps`` D updates, one G update, EMA and augmentation updates. Returns device scalars (no sync)."""
        t = self.config.train
        stats: dict[str, torch.Tensor] = {}
        for _ in range(t.d_steps):
            stats = d_step(self.ctx, self.batches, self.local_batch, self.gen)
            self.images_seen += t.batch_size
        stats.update(g_step(self.ctx, self.batches, self.local_batch, self.gen))
        update_ema(self.ema, self.g_raw, self._ema_beta())
        self.step += 1
        self._adapt_augmentation(stats["d_real_sign"])
        return stats

    def _install_signals(self) -> dict:
        def handler(signum, frame):  # noqa: ARG001
            self._stop_signal = signum

        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread
                pass
        return previous

    def train(self, progress: bool = True, deadline_s: float | None = None) -> FitResult:
        """Run until ``train.kimg``; a snapshot every ``snapshot_kimg``, on Ctrl-C/SIGTERM and at the end.

        ``deadline_s``: stop (with a snapshot, status ``budget``) once this many seconds have passed, even short of
        ``train.kimg`` — a budget plan's guard for a machine that got slower than it was when calibrated.
        """
        t = self.config.train
        total = int(t.kimg * 1000)
        next_tick = self._next_boundary(t.tick_kimg)
        next_snapshot = self._next_boundary(t.snapshot_kimg)
        next_eval = self._next_boundary(self.config.eval.every_kimg) if self.evaluator else None
        previous = self._install_signals()
        display = TrainProgress(total, enabled=progress and self.runtime.is_main)
        tick, last = TickAccumulator(self.runtime.device, self.images_seen), {}
        start_images, start_elapsed, start = self.images_seen, self.elapsed, time.perf_counter()
        try:
            with display:
                display.update(self.images_seen, last)
                while self.images_seen < total and self._stop_signal is None:
                    if deadline_s is not None and time.perf_counter() - start > deadline_s:
                        break
                    tick.add(self.train_step())
                    display.update(self.images_seen, last)
                    if self.images_seen >= next_tick or self.images_seen >= total:
                        self.elapsed = start_elapsed + time.perf_counter() - start
                        last = self._tick(tick) | self.latest_eval  # the last FID stays on the display
                        tick = TickAccumulator(self.runtime.device, self.images_seen, tick.bad_run)
                        next_tick = self._next_boundary(t.tick_kimg)
                    if next_eval is not None and self.images_seen >= next_eval:
                        last |= self._evaluate()
                        next_eval = self._next_boundary(self.config.eval.every_kimg)
                    if next_snapshot <= self.images_seen < total:
                        self.snapshot()
                        next_snapshot = self._next_boundary(t.snapshot_kimg)
            self.elapsed = start_elapsed + time.perf_counter() - start
            self.snapshot()
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
        wall = time.perf_counter() - start
        status = "interrupted" if self._stop_signal is not None else "done" if self.images_seen >= total else "budget"
        return FitResult(
            self.run_dir,
            self.kimg,
            self.step,
            status,
            wall,
            (self.images_seen - start_images) / max(wall, 1e-9),
            self.skipped_steps,
            last,
        )

    def _next_boundary(self, every_kimg: float) -> int:
        every = max(int(every_kimg * 1000), 1)
        return (self.images_seen // every + 1) * every

    def _tick(self, tick: TickAccumulator) -> dict:
        """Average the tick's device scalars (the loop's one host sync per tick) and append a log.jsonl record."""
        means, bad_total, max_bad_run = tick.summary(self.runtime)
        self.skipped_steps += bad_total
        record = {
            "kimg": round(self.kimg, 3),
            "step": self.step,
            "time_s": round(self.elapsed, 2),
            "img_per_s": round(tick.images_per_second(self.images_seen), 1),
            **{k: round(v, 5) for k, v in means.items()},
            "aug_p": round(float(self.p), 5),
            "lr_g": self.opt_g.param_groups[0]["lr"],
            "lr_d": self.opt_d.param_groups[0]["lr"],
            "skipped_steps": self.skipped_steps,
        }
        if self.runtime.is_main:
            append_jsonl(self.run_dir / LOG, record)
        if max_bad_run >= self.config.train.max_bad_steps:
            raise TrainingError(
                f"losses were not finite for {max_bad_run} consecutive steps at kimg {self.kimg:.1f}; "
                "training stopped (the last snapshot is intact)",
                hint="lower the learning rates (--set train.d_lr=1e-4 --set train.g_lr=1e-4) or use --precision fp32",
            )
        return record

    def _evaluate(self) -> dict:
        record = self.evaluator(self) if self.runtime.is_main else {}
        fid = record.get("fid")
        if fid is not None and (self.best_fid is None or fid < self.best_fid):
            self.best_fid = fid
            from gansynth.train.state import save_best

            save_best(self, record)
        self.latest_eval = {"fid": fid} if fid is not None else {}
        return self.latest_eval

"""The CycleGAN training loop: least-squares adversarial + cycle + identity losses, history pools, linear LR decay,
ticks, sample grids and exact-resume snapshots.

Length is counted in kimg of domain-A images (each step shows one batch of A and one of B). Batches and pool
choices come from one seeded ``torch.Generator`` whose state is part of the snapshot, so a resumed run continues
with the same draws as an uninterrupted one.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from gansynth.checkpoint import save_snapshot
from gansynth.data import ImageDataset
from gansynth.errors import TrainingError
from gansynth.images import encode_png, to_float, to_uint8
from gansynth.io import append_jsonl, atomic_write_bytes, make_dirs
from gansynth.rundir import DISCRIMINATOR, GENERATOR, LOG, SAMPLES
from gansynth.runtime import Runtime
from gansynth.train.progress import TrainProgress
from gansynth.train.trainer import FitResult
from gansynth.translate.config import TranslateConfig
from gansynth.translate.networks import build_translator
from gansynth.translate.semantic import (
    SemanticClassifier,
    freeze,
    pseudo_labels,
    semantic_loss,
    train_semantic_classifier,
)

GRID_COLUMNS = 10
# the run's network files: both generators in generator.safetensors, both discriminators in discriminator.safetensors
FILES = {GENERATOR: ("generator_ab", "generator_ba"), DISCRIMINATOR: ("discriminator_a", "discriminator_b")}


def split_state(tensors: dict[str, Tensor], names: tuple[str, ...]) -> dict[str, dict[str, Tensor]]:
    """``{"<net>.<param>": t}`` of one network file → ``{net: state_dict}``."""
    out: dict[str, dict[str, Tensor]] = {name: {} for name in names}
    for key, value in tensors.items():
        net, _, param = key.partition(".")
        if net in out:
            out[net][param] = value
    return out


class HistoryPool:
    """The last ``size`` generated images a discriminator saw (Shrivastava et al. 2017): each query returns, per
    image, either the new fake or (with probability 1/2, once full) a stored older one that the new fake replaces."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: Tensor | None = None  # [size, C, R, R] float, filled up to `count`
        self.count = 0

    def query(self, fakes: Tensor, rng: torch.Generator) -> Tensor:
        if self.size == 0:
            return fakes
        fakes = fakes.detach()
        if self.images is None:
            self.images = fakes.new_zeros(self.size, *fakes.shape[1:])
        out = fakes.clone()
        coins = torch.rand(len(fakes), generator=rng).tolist()
        slots = torch.randint(self.size, (len(fakes),), generator=rng).tolist()
        for i in range(len(fakes)):
            if self.count < self.size:
                self.images[self.count] = fakes[i]
                self.count += 1
            elif coins[i] < 0.5:
                out[i] = self.images[slots[i]]
                self.images[slots[i]] = fakes[i]
        return out

    def state(self) -> dict:
        return {"count": self.count, "images": self.images}

    def load(self, state: dict) -> None:
        self.count, self.images = int(state["count"]), state["images"]


def lsgan(scores: Tensor, real: bool) -> Tensor:
    """Least-squares adversarial loss (Mao et al. 2017): mean (D(x) − 1)² for real targets, D(x)² for fake ones."""
    return F.mse_loss(scores.float(), torch.full_like(scores.float(), 1.0 if real else 0.0))


def lr_factor(step: int, total: int, decay_start: float) -> float:
    """1 until ``decay_start`` × total steps, then linearly down to 0 at the last step (the paper's schedule)."""
    start = int(decay_start * total)
    if step < start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / max(total - start, 1))


@dataclass
class _Stop:
    """Ctrl-C / SIGTERM while training: finish the step, snapshot, report ``interrupted``."""

    signum: int | None = None

    def install(self) -> dict:
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, lambda signum, frame: setattr(self, "signum", signum))
            except ValueError:  # not the main thread
                pass
        return previous


class CycleTrainer:
    """Two generators (G: A → B, F: B → A), two discriminators, their optimizers and pools, on one runtime."""

    def __init__(
        self, config: TranslateConfig, a: ImageDataset, b: ImageDataset, runtime: Runtime, run_dir: Path
    ) -> None:
        self.config, self.runtime, self.run_dir = config, runtime, Path(run_dir)
        self.a, self.b = a, b
        torch.manual_seed(config.train.seed)
        nets = build_translator(config.model, a.resolution, a.channels, b.channels)
        self.nets = {name: runtime.prepare(net) for name, net in nets.items()}
        self.fast = {name: runtime.compile_module(net) for name, net in self.nets.items()}
        t = config.train
        gens = [*self.nets["generator_ab"].parameters(), *self.nets["generator_ba"].parameters()]
        discs = [*self.nets["discriminator_a"].parameters(), *self.nets["discriminator_b"].parameters()]
        self.opt_g, self.opt_d = runtime.adam(gens, t.lr, t.betas), runtime.adam(discs, t.lr, t.betas)
        self.scaler = runtime.make_scaler()
        self.pools = {"a": HistoryPool(t.pool_size), "b": HistoryPool(t.pool_size)}
        self.rng = torch.Generator().manual_seed(t.seed)
        self.images_a, self.images_b = (d.images.contiguous().to(runtime.device) for d in (a, b))
        self.labels_a = a.labels.to(runtime.device)
        self.semantic: SemanticClassifier | None = None  # f_A, trained on first use or restored from a snapshot
        self.step, self.total = 0, config.steps()

    @property
    def kimg(self) -> float:
        return self.step * self.config.train.batch_size / 1000

    def batches(self) -> tuple[Tensor, Tensor, Tensor]:
        """A random batch of each domain, float in [-1, 1] on the device, and the A batch's labels."""
        n = self.config.train.batch_size
        ia = torch.randint(len(self.images_a), (n,), generator=self.rng).to(self.runtime.device)
        ib = torch.randint(len(self.images_b), (n,), generator=self.rng).to(self.runtime.device)
        return to_float(self.images_a[ia]), to_float(self.images_b[ib]), self.labels_a[ia]

    def semantic_net(self) -> SemanticClassifier:
        """f_A (CyCADA): trained on domain A the first time it is needed (seeded), kept frozen afterwards."""
        if self.semantic is None:
            t = self.config.train
            self.semantic = train_semantic_classifier(
                self.a.images, self.a.labels, self.a.num_classes, t.semantic_epochs, t.seed, self.runtime.device,
                augment=t.semantic_augment,
            )  # fmt: skip
        return self.semantic

    def semantic_terms(self, fake_b: Tensor, labels: Tensor, real_b: Tensor, fake_a: Tensor) -> tuple[Tensor, Tensor]:
        """CyCADA's two terms: CE(f_A(G(a)), y_a) when ``train.semantic_weight`` > 0 and CE(f_A(F(b)), f_A(b)'s
        class) when ``train.semantic_weight_b`` > 0; a zero scalar for a term that is off (f_A trained only on use)."""
        t, zero = self.config.train, torch.zeros((), device=fake_b.device)
        on_a = zero if t.semantic_weight == 0 else semantic_loss(self.semantic_net(), fake_b, labels)
        if t.semantic_weight_b == 0:
            return on_a, zero
        net = self.semantic_net()
        return on_a, semantic_loss(net, fake_a, pseudo_labels(net, real_b))

    def train_step(self) -> dict[str, Tensor]:
        """One generator update and one discriminator update; returns the step's losses (device scalars)."""
        t, n = self.config.train, self.fast
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = t.lr * lr_factor(self.step, self.total, t.decay_start)
        real_a, real_b, labels_a = self.batches()
        with self.runtime.autocast():
            fake_b, fake_a = n["generator_ab"](real_a), n["generator_ba"](real_b)
            cycle = F.l1_loss(n["generator_ba"](fake_b).float(), real_a) + F.l1_loss(
                n["generator_ab"](fake_a).float(), real_b
            )
            adv = lsgan(n["discriminator_b"](fake_b), True) + lsgan(n["discriminator_a"](fake_a), True)
            identity = torch.zeros((), device=real_a.device)
            if t.identity_weight > 0 and self.a.channels == self.b.channels:  # G(b) ≈ b needs C_A = C_B
                identity = F.l1_loss(n["generator_ab"](real_b).float(), real_b) + F.l1_loss(
                    n["generator_ba"](real_a).float(), real_a
                )
            semantic, semantic_b = self.semantic_terms(fake_b, labels_a, real_b, fake_a)
            loss_g = adv + t.cycle_weight * cycle + t.identity_weight * t.cycle_weight * identity
            loss_g = loss_g + t.semantic_weight * semantic + t.semantic_weight_b * semantic_b
        self._update(self.opt_g, loss_g, "generators")
        loss_d = self._discriminator_loss(real_a, real_b, fake_a, fake_b)
        self._update(self.opt_d, loss_d, "discriminators")
        self.scaler.update()
        self.step += 1
        losses = {"loss_g": loss_g.detach(), "loss_d": loss_d.detach(), "cycle_l1": cycle.detach() / 2}
        losses |= {"semantic": semantic.detach()} if t.semantic_weight > 0 else {}
        return losses | ({"semantic_b": semantic_b.detach()} if t.semantic_weight_b > 0 else {})

    def _discriminator_loss(self, real_a: Tensor, real_b: Tensor, fake_a: Tensor, fake_b: Tensor) -> Tensor:
        """Both discriminators on real images vs pooled fakes, halved as in the paper (D learns slower than G)."""
        n, loss = self.fast, 0.0
        with self.runtime.autocast():
            for domain, real, fake in (("a", real_a, fake_a), ("b", real_b, fake_b)):
                pooled = self.pools[domain].query(fake.float(), self.rng)
                d = n[f"discriminator_{domain}"]
                loss = loss + 0.5 * (lsgan(d(real), True) + lsgan(d(pooled), False))
        return loss

    def _update(self, opt: torch.optim.Optimizer, loss: Tensor, what: str) -> None:
        if not torch.isfinite(loss):
            raise TrainingError(
                f"the {what}' loss became {float(loss)} at step {self.step}",
                hint="lower train.lr (e.g. --set train.lr=1e-4) or use --precision fp32; the last snapshot is kept",
            )
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)

    # --- state ----------------------------------------------------------------------------------------------

    def state(self) -> dict:
        """Everything besides the weights that an exact resume needs (tensors allowed anywhere)."""
        return {
            "step": self.step,
            "kimg": self.kimg,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": self.rng.get_state(),
            "pools": {k: p.state() for k, p in self.pools.items()},
            "semantic": None if self.semantic is None else self.semantic.state_dict(),
        }

    def network_files(self) -> dict[str, dict[str, Tensor]]:
        """``{file stem: {"<net>.<param>": tensor}}`` of the uncompiled networks."""
        return {
            stem: {f"{net}.{k}": v for net in names for k, v in self.nets[net].state_dict().items()}
            for stem, names in FILES.items()
        }

    def restore(self, state: dict, networks: dict[str, dict[str, Tensor]]) -> None:
        """Load a snapshot written by :meth:`snapshot` (weights, optimizers, pools, RNG, step)."""
        for stem, names in FILES.items():
            for net, sd in split_state(networks[stem], names).items():
                self.nets[net].load_state_dict(sd)
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.scaler.load_state_dict(state["scaler"])
        self.rng.set_state(state["rng"])
        for key, pool in self.pools.items():
            pool.load(state["pools"][key])
            if pool.images is not None:
                pool.images = pool.images.to(self.runtime.device)
        self.step = int(state["step"])
        self._restore_semantic(state.get("semantic"))

    def _restore_semantic(self, weights: dict[str, Tensor] | None) -> None:
        """f_A from a snapshot (None: not trained yet, or a run from before the semantic loss: trained on use)."""
        if weights is None:
            return
        net = SemanticClassifier(self.a.channels, self.a.num_classes).to(self.runtime.device)
        net.load_state_dict({k: v.to(self.runtime.device) for k, v in weights.items()})
        self.semantic = freeze(net)

    def snapshot(self) -> None:
        save_snapshot(self.run_dir, self.network_files(), self.state())
        self.write_grid()

    @torch.no_grad()
    def grid(self) -> Tensor:
        """Rows a → G(a) → F(G(a)) for the first image of each class (up to 10): uint8 ``[C, 3·R, 10·R]``."""
        labels = self.a.labels.tolist()
        first = [labels.index(k) for k in sorted(set(labels))][:GRID_COLUMNS]
        real_a = to_float(self.images_a[first])
        fake_b = self.nets["generator_ab"](real_a)
        rows = [to_uint8(x) for x in (real_a, fake_b, self.nets["generator_ba"](fake_b))]
        channels = max(r.shape[1] for r in rows)
        rows = [r.expand(-1, channels, -1, -1) for r in rows]  # a gray domain beside an RGB one
        return torch.cat([torch.cat(list(r), dim=2) for r in rows], dim=1)

    def write_grid(self) -> None:
        folder = make_dirs(self.run_dir / SAMPLES)
        atomic_write_bytes(folder / f"grid-{self.kimg:09.3f}.png", encode_png(self.grid()))

    # --- the loop -------------------------------------------------------------------------------------------

    def train(self, progress: bool = True) -> FitResult:
        """Run to the plan's last step: a log line every ``tick_kimg``, a snapshot every ``snapshot_kimg`` and at
        the end; Ctrl-C/SIGTERM stop after the current step, with a snapshot (status ``interrupted``)."""
        t = self.config.train
        every_tick = max(1, round(t.tick_kimg * 1000 / t.batch_size))
        every_snapshot = max(1, round(t.snapshot_kimg * 1000 / t.batch_size))
        stop, started, first = _Stop(), time.perf_counter(), self.step
        previous, sums, steps, last = stop.install(), {}, 0, {}
        display = TrainProgress(self.total * t.batch_size, enabled=progress)
        try:
            with display:
                while self.step < self.total and stop.signum is None:
                    for key, value in self.train_step().items():
                        sums[key] = sums.get(key, 0.0) + value
                    steps += 1
                    if self.step % every_tick == 0 or self.step == self.total:
                        last = self._tick(sums, steps, started, first)
                        sums, steps = {}, 0
                    display.update(self.step * t.batch_size, last)
                    if self.step % every_snapshot == 0 and self.step < self.total:
                        self.snapshot()
            self.snapshot()  # also after Ctrl-C: the step in flight has finished
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
        wall = time.perf_counter() - started
        status = "interrupted" if stop.signum is not None else "done"
        rate = (self.step - first) * t.batch_size / max(wall, 1e-9)
        return FitResult(self.run_dir, self.kimg, self.step, status, wall, rate, last_tick=last)

    def _tick(self, sums: dict[str, Tensor], steps: int, started: float, first: int) -> dict:
        """Average the tick's losses (one host sync) and append a log.jsonl record; returns it."""
        t = self.config.train
        elapsed = max(time.perf_counter() - started, 1e-9)
        record = {"kimg": round(self.kimg, 3), "step": self.step}
        record |= {k: round(float(v) / max(steps, 1), 5) for k, v in sums.items()}
        record["img_per_s"] = round((self.step - first) * t.batch_size / elapsed, 1)
        record["lr"] = t.lr * lr_factor(self.step - 1, self.total, t.decay_start)
        append_jsonl(self.run_dir / LOG, record)
        return record

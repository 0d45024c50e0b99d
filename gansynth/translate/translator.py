"""Load a translation run's generators and turn uint8 images of one domain into the other's look.

The networks run on batches of one fixed shape (``BATCH`` rows, the last batch padded), so an image's translation
depends only on the checkpoint and the image — on a given machine — never on which images share its batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from gansynth.checkpoint import resolve_run
from gansynth.errors import ConfigError, DataError
from gansynth.images import resize, to_float, to_uint8
from gansynth.rundir import DATASET, DATASET_FIELDS, GENERATOR, RunDir, check_fields
from gansynth.runtime import as_device, inference_module
from gansynth.translate.config import DOMAIN_B_KEY, TranslateConfig
from gansynth.translate.networks import build_translator
from gansynth.translate.train import FILES, split_state

BATCH = 64
DIRECTIONS = ("ab", "ba")  # ab: A → B (G), ba: B → A (F)


@dataclass
class Translator:
    """The two generators of a run, ready for inference.

    Attributes:
        run_dir: the run.
        generators: ``{"ab": G, "ba": F}`` in eval mode on ``device``.
        resolution: the trained side in px; other sizes are resized to it first.
        channels: ``{"a": C_A, "b": C_B}``.
        class_names: domain A's classes (the labels a translation keeps).
        dataset_info: the run's ``dataset.json`` (domain B's record under ``domain_b``).
        checkpoint_sha256: sha256 of ``generator.safetensors``.
        kimg: training length of the snapshot.
    """

    run_dir: Path
    generators: dict[str, nn.Module]
    resolution: int
    channels: dict[str, int]
    class_names: list[str]
    dataset_info: dict
    checkpoint_sha256: str
    kimg: float | None
    device: torch.device

    @torch.no_grad()
    def translate(self, images: Tensor, direction: str = "ab") -> Tensor:
        """uint8 ``[N, C, H, W]`` of the source domain → uint8 ``[N, C', R, R]`` in the target domain's look (CPU).

        Raises:
            DataError: not uint8 NCHW, or the channels of the wrong domain.
            ConfigError: an unknown direction.
        """
        if direction not in DIRECTIONS:
            raise ConfigError(f"unknown direction {direction!r}", hint="'ab' (A → B) or 'ba' (B → A)")
        source = self.channels[direction[0]]
        if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
            raise DataError("translate() takes uint8 images [N, C, H, W]", hint="convert with (x * 255).round()")
        if images.shape[1] != source:
            raise DataError(
                f"images have {images.shape[1]} channels; domain {direction[0].upper()} has {source}",
                hint="convert the images to the domain's channels (gray: 1, RGB: 3)",
            )
        images = resize(images.cpu(), self.resolution).contiguous()  # NCHW: the layout changes a conv's last bit
        net, outputs = self.generators[direction], []
        for start in range(0, len(images), BATCH):
            chunk = images[start : start + BATCH]
            padded = torch.cat([chunk, chunk.new_zeros(BATCH - len(chunk), *chunk.shape[1:])])
            outputs.append(to_uint8(net(to_float(padded.to(self.device))))[: len(chunk)])
        target = self.channels[direction[1]]
        return torch.cat(outputs) if outputs else images.new_zeros(0, target, self.resolution, self.resolution)

    def cycle_error(self, images: Tensor) -> float:
        """Mean |F(G(a)) − a| in uint8 levels (0–255) over domain-A images (uint8, at the trained size)."""
        back = self.translate(self.translate(images, "ab"), "ba")
        return (back.float() - resize(images, self.resolution).float()).abs().mean().item()


def load_translator(run: str | Path | None = None, device: str | torch.device = "cpu") -> Translator:
    """The generators of a ``gansynth translate fit`` run (its latest snapshot, sha256-checked).

    Raises:
        CheckpointError: not a run, not a translation run, a damaged or missing file.
    """
    run_dir = resolve_run(run)
    reader = RunDir(run_dir)
    config = TranslateConfig.from_dict(reader.config())
    info = reader.dataset()
    info_b = check_fields(reader.path / DATASET, info.get(DOMAIN_B_KEY), DATASET_FIELDS, ("channels",))
    record = reader.snapshot_record()  # every file of the snapshot matches its sha256
    name = f"{GENERATOR}.safetensors"
    states = split_state(reader.tensors(name), FILES[GENERATOR])
    channels = {"a": int(info["channels"]), "b": int(info_b["channels"])}
    nets = build_translator(config.model, int(info["resolution"]), channels["a"], channels["b"])
    dev = as_device(device)
    generators = {}
    for direction, net_name in zip(DIRECTIONS, FILES[GENERATOR]):
        net = nets[net_name]
        _load(net, states[net_name], reader.path / name)
        generators[direction] = inference_module(net, dev)
    return Translator(
        run_dir, generators, int(info["resolution"]), channels, list(info["class_names"]), info,
        record["files"][name], record.get("kimg"), dev,
    )  # fmt: skip


def _load(net: nn.Module, state: dict[str, Tensor], path: Path) -> None:
    from gansynth.rundir import damaged

    try:
        net.load_state_dict(state)
    except (RuntimeError, KeyError) as exc:
        raise damaged(path, f"does not fit the run's config ({str(exc).splitlines()[0]})") from None

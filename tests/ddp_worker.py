"""Run under torchrun by tests/test_ddp.py: train a tiny Trainer, optionally resume, dump this rank's weights."""

import dataclasses
import sys
from pathlib import Path

from safetensors.torch import save_file

from gansynth.checkpoint import load_train_state, write_run_header
from gansynth.config import build_config
from gansynth.data import load_dataset
from gansynth.runtime import make_runtime
from gansynth.train.trainer import Trainer

TINY = [
    "model.arch=dcgan",
    "model.g_width=32",
    "model.d_width=16",
    "model.z_dim=16",
    "model.embed_dim=8",
    "train.batch_size=16",
    "train.tick_kimg=0.016",
    "augment.enabled=true",
    "augment.ada_target=0.6",
    "augment.ada_kimg=1",
    "data.resolution=16",
]


def main(folder: str, run_dir: str, kimg: str, resume: str) -> None:
    runtime = make_runtime("cpu", "fp32", compile=False)
    dataset = load_dataset(folder, resolution=16)
    config = build_config(overrides=[*TINY, f"train.kimg={kimg}"])
    config = dataclasses.replace(config, augment=dataclasses.replace(config.augment, enabled=True))
    run = Path(run_dir)
    if runtime.is_main:
        write_run_header(run, config.to_dict(), dataset.info())
    runtime.barrier()
    trainer = Trainer(config, dataset, runtime, run)
    if resume == "1":
        trainer.load_state_dict(*load_train_state(run))
    trainer.train(progress=False)
    tensors = {f"g.{k}": v for k, v in trainer.g_raw.state_dict().items()}
    tensors |= {f"d.{k}": v for k, v in trainer.d_raw.state_dict().items() if "running" not in k}
    tensors |= {f"ema.{k}": v for k, v in trainer.ema.state_dict().items()}
    tensors["aug_p"] = trainer.p.detach().reshape(1)
    save_file({k: v.detach().clone().contiguous() for k, v in tensors.items()}, run / f"rank{runtime.rank}.safetensors")


if __name__ == "__main__":
    main(*sys.argv[1:])

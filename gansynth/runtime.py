"""The one module that owns the machine: device, precision/autocast, GradScaler, TF32, torch.compile, seeding, DDP.

Everything else asks a :class:`Runtime` instead of touching CUDA, AMP or compile APIs itself.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from gansynth.errors import ConfigError, is_int

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile modes
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → the local CUDA device when present, else CPU; ``cuda`` without CUDA is a ConfigError."""
    if name not in DEVICES:
        raise ConfigError(f"unknown device {name!r}", hint=f"choices: {', '.join(DEVICES)}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is visible", hint="use --device cpu or auto")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))


def as_device(device: str | torch.device) -> torch.device:
    """A device from a name (``auto``, ``cpu``, ``cuda``, ``cuda:1``) or a ``torch.device`` (ConfigError otherwise)."""
    if isinstance(device, torch.device):
        return device
    if isinstance(device, str) and device.startswith("cuda:") and device[5:].isdigit():
        resolve_device("cuda")  # a ConfigError without CUDA
        return torch.device(device)
    if not isinstance(device, str):
        raise ConfigError(f"device {device!r} is not a device name", hint=f"choices: {', '.join(DEVICES)}, cuda:N")
    return resolve_device(device)


@functools.cache
def native_cpu_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AMX or AVX-512 BF16, from /proc/cpuinfo's flags).

    There, bf16 autocast trains the GAN about 2× faster at the same quality (benchmarks/README.md, "bf16 on the
    CPU"); elsewhere bf16 is emulated and slower than fp32.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return bool({"amx_bf16", "avx512_bf16"} & set(flags.split()))


def resolve_precision(name: str, device: torch.device, cpu_auto: str = "fp32") -> str:
    """``auto`` → bf16 on GPUs that support it, fp16 (with a scaler) on older GPUs, ``cpu_auto`` on CPU (fp32; GAN
    training passes bf16 where :func:`native_cpu_bf16`)."""
    if name not in PRECISIONS:
        raise ConfigError(f"unknown precision {name!r}", hint=f"choices: {', '.join(PRECISIONS)}")
    if name != "auto":
        if name == "fp16" and device.type == "cpu":
            raise ConfigError("fp16 autocast is not supported on CPU", hint="use --precision bf16 or fp32 on CPU")
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return cpu_auto


@dataclass(frozen=True)
class Runtime:
    """How and where tensors run.

    Attributes:
        device: the torch device of this process.
        precision: ``fp32``, ``bf16`` or ``fp16`` (autocast dtype of forward passes).
        compile: whether :meth:`compile_module` really compiles.
        compile_mode: the ``torch.compile`` mode (``reduce-overhead`` adds CUDA graphs).
        rank / world_size: this process's place in a torchrun job (0 / 1 without one).
    """

    device: torch.device
    precision: str = "fp32"
    compile: bool = False
    compile_mode: str = "default"
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def channels_last(self) -> bool:
        return self.device.type == "cuda"

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Mixed-precision region for forward passes (a no-op in fp32)."""
        if self.precision == "fp32":
            yield
            return
        with torch.autocast(self.device.type, dtype=_DTYPES[self.precision]):
            yield

    def make_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler that is active only for fp16 (bf16 and fp32 need none)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    def prepare(self, module: nn.Module) -> nn.Module:
        """Move a module to the device (channels_last on CUDA)."""
        module = module.to(self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module

    def compile_module(self, module: nn.Module) -> nn.Module:
        """The compiled module when compile is on, else the module itself; save the *uncompiled* state_dict."""
        if not self.compile:
            return module
        return torch.compile(module, dynamic=False, mode=self.compile_mode)

    def wrap_ddp(self, module: nn.Module) -> nn.Module:
        """DistributedDataParallel around ``module`` under torchrun, the module itself otherwise."""
        if not self.distributed:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        with warnings.catch_warnings():  # BatchNorm statistics stay rank-local (EMA stats are recomputed at snapshots)
            warnings.simplefilter("ignore", FutureWarning)
            return nn.parallel.DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)

    def adam(self, params, lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
        """Fused Adam (one kernel per step; it honours a device-side ``found_inf`` flag without a host sync)."""
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)

    def generator(self, seed: int) -> torch.Generator:
        """A torch.Generator on this device seeded with ``seed``."""
        return torch.Generator(self.device).manual_seed(seed)

    def all_reduce_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """Mean of ``tensor`` over ranks (in place); identity without DDP."""
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
            tensor /= self.world_size
        return tensor

    def all_reduce_max(self, tensor: torch.Tensor) -> torch.Tensor:
        """Max of ``tensor`` over ranks (in place); identity without DDP."""
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return tensor

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


@contextlib.contextmanager
def full_precision(device: torch.device | str) -> Iterator[None]:
    """fp32 inside, even within a caller's autocast region (a side network trained in the middle of a mixed-precision
    step, such as translate's frozen semantic classifier)."""
    with torch.autocast(as_device(device).type, enabled=False):
        yield


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def inference_module(module: nn.Module, device: torch.device | str) -> nn.Module:
    """A network prepared for sampling: on ``device``, eval mode, channels_last weights on every device.

    channels_last on the CPU too: oneDNN convolutions run about 1.3× faster that way (the BigGAN generator at
    32 px, 2 cores). The layout is part of what a sample's bytes depend on, so every sampling path (sampler,
    export, SyntheticDataset) goes through this one function.
    """
    return module.to(torch.device(device)).eval().to(memory_format=torch.channels_last)


def available_memory(device: torch.device) -> int | None:
    """Bytes free for tensors on ``device`` (None when unknown): CUDA's free memory, or the host's available RAM."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def set_threads(threads: int | None) -> None:
    """Intra-op CPU threads of torch; None keeps torch's default (one per core).

    On a machine shared with other jobs, one thread is often much faster than two that wait on each other.
    """
    if threads is None:
        return
    if not is_int(threads) or threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads!r}", hint="e.g. 1 on a shared CPU machine")
    torch.set_num_threads(threads)


def make_runtime(
    device: str = "auto",
    precision: str = "auto",
    compile: bool | None = None,
    compile_mode: str = "default",
    cpu_auto: str = "fp32",
) -> Runtime:
    """Resolve user choices into a Runtime, joining the torchrun process group when launched by torchrun.

    Args:
        device: ``auto``, ``cpu`` or ``cuda``.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
        compile: None → on for CUDA, off for CPU.
        compile_mode: ``torch.compile`` mode when compiling.
        cpu_auto: what ``auto`` precision means on a CPU (``fp32``; ``fit`` asks for bf16 where it is native).
    """
    if compile_mode not in COMPILE_MODES:
        raise ConfigError(f"unknown compile mode {compile_mode!r}", hint=f"choices: {', '.join(COMPILE_MODES)}")
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    dev = resolve_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    prec = resolve_precision(precision, dev, cpu_auto)
    rank = dist.get_rank() if dist.is_initialized() else 0
    use_compile = dev.type == "cuda" if compile is None else compile
    return Runtime(dev, prec, use_compile, compile_mode, rank, world_size)


def cpu_runtime() -> Runtime:
    """A plain fp32 CPU runtime (tests, small tools)."""
    return Runtime(device=torch.device("cpu"))

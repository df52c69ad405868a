"""Where the forward pass runs: CUDA with bf16 autocast when present, else CPU in fp32."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Device:
    torch_device: torch.device
    autocast_dtype: torch.dtype | None

    @property
    def is_cuda(self) -> bool:
        return self.torch_device.type == "cuda"

    @contextlib.contextmanager
    def inference(self) -> Iterator[None]:
        """No autograd, and mixed precision where the hardware has it."""
        with torch.inference_mode():
            if self.autocast_dtype is None:
                yield
            else:
                with torch.autocast(self.torch_device.type, dtype=self.autocast_dtype):
                    yield

    def __str__(self) -> str:
        suffix = f"+{self.autocast_dtype}" if self.autocast_dtype is not None else ""
        return f"{self.torch_device}{suffix}"


def pick_device(name: str | None = None) -> Device:
    """`name` as torch spells it ("cuda", "cuda:1", "cpu"); None picks CUDA when available."""
    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        return Device(device, torch.bfloat16 if bf16 else torch.float16)
    # CPU autocast to bf16 is slower than fp32 on most CPUs and changes results; keep fp32.
    return Device(device, None)

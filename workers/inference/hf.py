"""Loading transformers models the same way for every family.

`ModelSpec.source` is a local folder written by `save_pretrained` (tests, air-gapped deployments)
or a hub id (production, fetched once into the hub cache at deployment). Weights are read from
safetensors only unless `options["allow_pickle_weights"]` is true, and repository code is never
executed (no `trust_remote_code`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import torch
from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer
from transformers.utils import logging as hf_logging

from workers.contracts import ModelSpec
from workers.inference.device import Device
from workers.inference.options import option_bool, option_optional_str

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def source_kwargs(spec: ModelSpec) -> dict[str, Any]:
    """Arguments for `from_pretrained` of processors and configs."""
    kwargs: dict[str, Any] = {}
    if Path(spec.source).is_dir():
        kwargs["local_files_only"] = True
    revision = option_optional_str(spec, "revision")
    if revision is not None:
        kwargs["revision"] = revision
    return kwargs


def model_kwargs(spec: ModelSpec, device: Device, *, low_precision: bool = False) -> dict[str, Any]:
    """Arguments for a model's `from_pretrained`.

    `low_precision` loads the weights in the device's autocast dtype: large vision-language models
    would not fit a GPU in fp32. `options["dtype"]` overrides.
    """
    # Workers log structured events; per-shard progress bars would only clutter them.
    cast(Any, hf_logging).disable_progress_bar()
    kwargs = source_kwargs(spec)
    kwargs["use_safetensors"] = not option_bool(spec, "allow_pickle_weights", False)
    dtype_name = option_optional_str(spec, "dtype")
    if dtype_name is not None:
        if dtype_name not in _DTYPES:
            raise ValueError(f"{spec.ref}: dtype must be one of {sorted(_DTYPES)}")
        kwargs["dtype"] = _DTYPES[dtype_name]
    elif low_precision and device.autocast_dtype is not None:
        kwargs["dtype"] = device.autocast_dtype
    return kwargs


# transformers' Auto classes are untyped; what they return is duck-typed by each family anyway.
def load_processor(spec: ModelSpec) -> Any:
    return cast(Any, AutoProcessor).from_pretrained(spec.source, **source_kwargs(spec))


def load_image_processor(spec: ModelSpec) -> Any:
    return cast(Any, AutoImageProcessor).from_pretrained(spec.source, **source_kwargs(spec))


def load_tokenizer(spec: ModelSpec) -> Any:
    return cast(Any, AutoTokenizer).from_pretrained(spec.source, **source_kwargs(spec))


def to_device(model: Any, device: Device) -> Any:
    return model.to(device.torch_device).eval()


def move(batch: Any, device: Device, dtype: torch.dtype | None = None) -> dict[str, Any]:
    """A processor's output on the device; floating tensors (pixels) cast to `dtype` if given."""
    moved: dict[str, Any] = {}
    for key, value in dict(batch).items():
        if isinstance(value, torch.Tensor):
            value = value.to(device.torch_device)
            if dtype is not None and value.is_floating_point():
                value = value.to(dtype)
        moved[key] = value
    return moved

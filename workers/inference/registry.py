"""Models loaded once per worker process, reused across tasks, dropped when idle.

Keyed by (family, source, version, options): the same weights with other options (a temperature,
a prompt template, a LoRA adapter folder in `options["adapter"]`) are another labeler. Every `get`
first evicts entries idle longer than `idle_seconds`, so a GPU worker that moved on to another
project frees the old model's memory.
Families are imported on first use: a worker that only embeds never imports transformers.
"""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch

from workers.contracts import ModelSpec
from workers.inference.device import Device, pick_device
from workers.inference.labelers.base import Embedder, Labeler

DEFAULT_IDLE_SECONDS = 900.0
RegistryKey = tuple[str, str, str, str]
T = TypeVar("T")


def load_model(spec: ModelSpec, device: Device) -> object:
    """The production loader of each family; see each module's docstring for its source layout."""
    if spec.family == "open_clip":
        from workers.inference.labelers.open_clip import OpenClipLabeler

        return OpenClipLabeler.load(spec, device)
    if spec.family == "vqa":
        from workers.inference.labelers.vqa import VqaLabeler

        return VqaLabeler.load(spec, device)
    if spec.family == "captioner":
        from workers.inference.labelers.captioner import CaptionLabeler

        return CaptionLabeler.load(spec, device)
    if spec.family == "heads":
        from workers.inference.labelers.heads import HeadsLabeler

        return HeadsLabeler.load(spec)
    if spec.family == "stats":
        from workers.inference.labelers.stats import StatsLabeler

        return StatsLabeler.load(spec)
    if spec.family == "detector":
        from workers.inference.analyzers.detector import TransformersPersonDetector

        return TransformersPersonDetector.load(spec, device)
    if spec.family == "parser":
        from workers.inference.analyzers.parsing import HumanParser

        return HumanParser.load(spec, device)
    raise ValueError(f"family {spec.family!r} has no model to load")


@dataclass
class _Entry:
    model: object
    last_used: float


class ModelRegistry:
    def __init__(
        self,
        device: Device,
        *,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
        loader: Callable[[ModelSpec, Device], object] = load_model,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.device = device
        self.idle_seconds = idle_seconds
        self._loader = loader
        self._clock = clock
        self._entries: dict[RegistryKey, _Entry] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(spec: ModelSpec) -> RegistryKey:
        return (spec.family, spec.source, spec.version, json.dumps(spec.options, sort_keys=True))

    def get(self, spec: ModelSpec) -> object:
        with self._lock:
            self._evict_idle_locked()
            key = self.key(spec)
            entry = self._entries.get(key)
            if entry is None:
                entry = _Entry(self._loader(spec, self.device), self._clock())
                self._entries[key] = entry
            entry.last_used = self._clock()
            return entry.model

    def get_as(self, spec: ModelSpec, kind: type[T]) -> T:
        model = self.get(spec)
        if not isinstance(model, kind):
            raise TypeError(f"{spec.ref} loaded as {type(model).__name__}, not a {kind.__name__}")
        return model

    def labeler(self, spec: ModelSpec) -> Labeler:
        return self.get_as(spec, Labeler)  # type: ignore[type-abstract]

    def embedder(self, spec: ModelSpec) -> Embedder:
        return self.get_as(spec, Embedder)  # type: ignore[type-abstract]

    def evict_idle(self) -> list[RegistryKey]:
        with self._lock:
            return self._evict_idle_locked()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._release_memory()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, spec: ModelSpec) -> bool:
        return self.key(spec) in self._entries

    def _evict_idle_locked(self) -> list[RegistryKey]:
        now = self._clock()
        stale = [k for k, e in self._entries.items() if now - e.last_used > self.idle_seconds]
        for key in stale:
            del self._entries[key]
        if stale:
            self._release_memory()
        return stale

    def _release_memory(self) -> None:
        gc.collect()
        if self.device.is_cuda:
            torch.cuda.empty_cache()


_process_registry: ModelRegistry | None = None
_process_lock = threading.Lock()


def process_registry() -> ModelRegistry:
    """The worker process's registry, on the default device."""
    global _process_registry
    with _process_lock:
        if _process_registry is None:
            _process_registry = ModelRegistry(pick_device())
        return _process_registry

from __future__ import annotations

import pytest

from workers.contracts import ModelSpec
from workers.inference.device import Device
from workers.inference.labelers.stats import StatsLabeler
from workers.inference.registry import ModelRegistry, load_model


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _counting_registry(cpu: Device, clock: Clock) -> tuple[ModelRegistry, list[ModelSpec]]:
    loads: list[ModelSpec] = []

    def loader(spec: ModelSpec, device: Device) -> object:
        loads.append(spec)
        return load_model(spec, device)

    return ModelRegistry(cpu, idle_seconds=60, loader=loader, clock=clock), loads


def test_a_model_is_loaded_once_per_process(cpu: Device, stats_spec: ModelSpec) -> None:
    registry, loads = _counting_registry(cpu, Clock())
    first = registry.get(stats_spec)
    assert registry.get(stats_spec.model_copy()) is first
    assert len(loads) == 1 and stats_spec in registry


def test_other_options_or_versions_are_other_models(cpu: Device, stats_spec: ModelSpec) -> None:
    registry, loads = _counting_registry(cpu, Clock())
    registry.get(stats_spec)
    registry.get(stats_spec.model_copy(update={"options": {"grid": 2}}))
    registry.get(stats_spec.model_copy(update={"version": "2"}))
    assert len(loads) == 3 and len(registry) == 3


def test_idle_models_are_evicted_and_reloaded_on_demand(cpu: Device, stats_spec: ModelSpec) -> None:
    clock = Clock()
    registry, loads = _counting_registry(cpu, clock)
    other = stats_spec.model_copy(update={"version": "2"})
    registry.get(stats_spec)
    clock.now = 50
    registry.get(other)
    clock.now = 100  # stats_spec idle for 100 s, other for 50 s
    assert registry.evict_idle() == [ModelRegistry.key(stats_spec)]
    assert other in registry and stats_spec not in registry
    registry.get(stats_spec)
    assert len(loads) == 3


def test_typed_access_checks_what_was_loaded(cpu: Device, stats_spec: ModelSpec) -> None:
    registry = ModelRegistry(cpu)
    assert isinstance(registry.labeler(stats_spec), StatsLabeler)
    assert registry.embedder(stats_spec).dim > 0
    with pytest.raises(TypeError):
        registry.get_as(stats_spec, int)


def test_quality_is_not_a_model(cpu: Device) -> None:
    with pytest.raises(ValueError):
        load_model(ModelSpec(family="quality", source="builtin", name="q", version="1"), cpu)

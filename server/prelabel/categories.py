"""The taxonomy as the GPU worker sees it (workers.contracts.CategorySpec), and back.

Booleans are keyed "true"/"false" in the taxonomy and "yes"/"no" on the wire; labels store the
boolean itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.orm import Category
from workers import contracts

_WIRE = {"true": "yes", "false": "no"}
_TAXONOMY = {wire: key for key, wire in _WIRE.items()}


def contract_categories(
    categories: Sequence[Category], include_sensitive: bool
) -> list[contracts.CategorySpec]:
    """The categories a labeler is asked; sensitive ones only when the project opted in, and
    a category whose condition reads a left-out category is left out too."""
    kept = {c.key for c in categories if include_sensitive or not c.sensitive}
    booleans = {c.key for c in categories if c.kind == "boolean"}
    specs = []
    for category in categories:
        if category.key not in kept:
            continue
        when = category.when
        if when is not None and not _references(when) <= kept:
            continue
        if when is not None:
            when = _wire_condition(when, booleans)
        specs.append(
            contracts.CategorySpec(
                key=category.key,
                kind=category.kind,
                question=category.question,
                values=[
                    contracts.ValueSpec(
                        key=_WIRE.get(v.key, v.key) if category.kind == "boolean" else v.key,
                        label=v.label,
                        prompts=[str(p) for p in v.prompts],
                    )
                    for v in category.values
                ],
                when=when,
            )
        )
    return specs


def _wire_condition(condition: dict[str, Any], booleans: set[str]) -> dict[str, Any]:
    """Conditions on boolean categories test "true"/"false" in the taxonomy, "yes"/"no" on the wire."""
    if "all" in condition or "any" in condition:
        key = "all" if "all" in condition else "any"
        return {key: [_wire_condition(c, booleans) for c in condition[key]]}
    if condition.get("category") not in booleans:
        return condition

    def wire(value: Any) -> Any:
        if isinstance(value, bool):
            return "yes" if value else "no"
        return _WIRE.get(value, value) if isinstance(value, str) else value

    return {
        k: ([wire(v) for v in value] if isinstance(value, list) else wire(value))
        if k != "category"
        else value
        for k, value in condition.items()
    }


def _references(condition: dict[str, Any]) -> set[str]:
    if "all" in condition or "any" in condition:
        return set().union(*(_references(c) for c in condition.get("all", condition.get("any", []))))
    return {str(condition["category"])}


def from_contract_value(category: Category, value: contracts.Value) -> Any:
    if category.kind == "boolean" and isinstance(value, str):
        return value == "yes"
    return value


def normalise_distribution(category: Category, distribution: dict[str, float]) -> dict[str, float]:
    if category.kind != "boolean":
        return {k: round(float(p), 6) for k, p in distribution.items()}
    return {_TAXONOMY.get(k, k): round(float(p), 6) for k, p in distribution.items()}

"""Label Studio's import format, as its docs describe it (labelstud.io/guide/task_format and
/guide/predictions), checked without Label Studio: a JSON schema for the tasks, and the checks
Label Studio's labeling interface makes of each result against the labeling config (the control
named by `from_name` exists and targets the object named by `to_name`, its type matches the
result's, every choice is one of the control's, a single-choice control gets one choice, the
data key each object reads is in the task)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Any

import jsonschema

_RESULT = {
    "type": "object",
    "required": ["from_name", "to_name", "type", "value"],
    "properties": {
        "id": {"type": "string"},
        "from_name": {"type": "string", "minLength": 1},
        "to_name": {"type": "string", "minLength": 1},
        "type": {"type": "string"},
        "value": {"type": "object"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "origin": {"type": "string"},
    },
}
TASKS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "array",
    "items": {
        "type": "object",
        "required": ["data"],
        "properties": {
            "id": {"type": "integer"},
            "data": {"type": "object", "minProperties": 1},
            "annotations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["result"],
                    "properties": {
                        "result": {"type": "array", "items": _RESULT},
                        "was_cancelled": {"type": "boolean"},
                        "ground_truth": {"type": "boolean"},
                    },
                },
            },
            "predictions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["result"],
                    "properties": {
                        "model_version": {"type": "string"},
                        "score": {"type": "number", "minimum": 0, "maximum": 1},
                        "result": {"type": "array", "items": _RESULT},
                    },
                },
            },
        },
    },
}
# control tag -> the result type it produces and the key of its value
_CONTROLS = {"Choices": ("choices", "choices"), "TextArea": ("textarea", "text")}


def problems(tasks: Any, config_xml: str) -> list[str]:
    """Every way `tasks` would not load into a Label Studio project with `config_xml`."""
    found = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in _validator().iter_errors(tasks)]
    if found:
        return found
    root = ElementTree.fromstring(config_xml)
    if root.tag != "View":
        return ["the labeling config's root is not <View>"]
    objects = {el.get("name"): el.get("value", "") for el in root.iter("Image")}
    controls: dict[str, tuple[str, str, str, set[str] | None, bool]] = {}
    for tag, (kind, key) in _CONTROLS.items():
        for el in root.iter(tag):
            name = el.get("name") or ""
            if name in controls or name in objects:
                found.append(f"the config names {name!r} twice")
            choices = {c.get("value") or "" for c in el.iter("Choice")} if tag == "Choices" else None
            controls[name] = (el.get("toName") or "", kind, key, choices, el.get("choice") == "multiple")
    for name, (to_name, *_rest) in controls.items():
        if to_name not in objects:
            found.append(f"control {name!r} targets {to_name!r}, which is not an object of the config")
    for index, task in enumerate(tasks):
        for obj, value in objects.items():
            if value.startswith("$") and value[1:] not in task["data"]:
                found.append(f"task {index}: data has no {value[1:]!r} for object {obj!r}")
        for where, items in [
            *((f"annotations[{i}]", a["result"]) for i, a in enumerate(task.get("annotations", []))),
            *((f"predictions[{i}]", p["result"]) for i, p in enumerate(task.get("predictions", []))),
        ]:
            for item in items:
                at = f"task {index} {where} {item['from_name']}"
                control = controls.get(item["from_name"])
                if control is None:
                    found.append(f"{at}: no control of that name in the config")
                    continue
                to_name, kind, key, choices, multiple = control
                if item["to_name"] != to_name or item["type"] != kind:
                    found.append(f"{at}: expected to_name {to_name!r} and type {kind!r}")
                values = item["value"].get(key)
                if not isinstance(values, list) or not all(isinstance(v, str) for v in values) or not values:
                    found.append(f"{at}: value.{key} is not a non-empty list of strings")
                    continue
                if choices is not None and not set(values) <= choices:
                    found.append(f"{at}: {sorted(set(values) - choices)} are not choices of the control")
                if choices is not None and not multiple and len(values) != 1:
                    found.append(f"{at}: a single-choice control with {len(values)} choices")
    return found


def _validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(TASKS_SCHEMA)
    return cls(TASKS_SCHEMA)  # type: ignore[no-any-return]

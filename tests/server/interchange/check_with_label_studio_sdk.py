"""Check an exported Label Studio folder (tasks.json + labeling_config.xml) with the real Label
Studio SDK, which pins versions (numpy, opencv) the project's venv must not take, so it runs from
its own venv:

    python3 -m venv /tmp/lsvenv && /tmp/lsvenv/bin/pip install label-studio-sdk
    AA_LS_ROUNDTRIP_DIR=/tmp/ls_roundtrip .venv/bin/python -m pytest \
        tests/server/interchange/test_labelstudio_roundtrip.py
    /tmp/lsvenv/bin/python tests/server/interchange/check_with_label_studio_sdk.py /tmp/ls_roundtrip

Exits 1 on any problem. (The round-trip test runs the same checks itself when the SDK is
importable in the project's venv.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from label_studio_sdk.label_interface import LabelInterface


def main(folder: Path) -> int:
    interface = LabelInterface((folder / "labeling_config.xml").read_text())
    interface.validate()  # the config's schema, unique names, toName targets, attributes
    tasks: list[dict[str, Any]] = json.loads((folder / "tasks.json").read_text())
    errors: list[str] = []
    checked = 0
    for task in tasks:
        for obj in interface.objects:
            if obj.value_is_variable and task["data"].get(obj.value_name) is None:
                errors.append(f"task {task.get('id')}: data has no {obj.value_name!r}")
        for item in [*task.get("annotations", []), *task.get("predictions", [])]:
            checked += 1
            errors += [
                f"task {task.get('id')}: {e}" for e in interface.validate_prediction(item, return_errors=True)
            ]
    # The SDK must refuse what Label Studio refuses, or this check proves nothing.
    wrong = {
        "from_name": "top.color",
        "to_name": "image",
        "type": "choices",
        "value": {"choices": ["mauve?"]},
    }
    unknown = {**wrong, "from_name": "no.such.control", "value": {"choices": ["red"]}}
    for bad in (wrong, unknown):
        if not interface.validate_prediction({"result": [bad]}, return_errors=True):
            errors.append(f"the SDK accepted {bad}")
    print(
        f"config valid; tasks={len(tasks)}; annotations+predictions checked={checked}; errors={len(errors)}"
    )
    for error in errors:
        print(error)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))

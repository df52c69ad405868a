from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from server.cli import main
from tests.server.conftest import Api


def test_the_cli_imports_an_export_reports_bad_tasks_and_a_second_run_adds_nothing(
    admin: Api, project: dict[str, Any], ls_export: list[dict[str, Any]], tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("AA_ADMIN_EMAIL", admin.user["email"])
    file = tmp_path / "export.json"
    file.write_text(json.dumps(ls_export))
    runner = CliRunner()
    args = ["import-labelstudio", "--project", project["slug"], "--map", "shot_type=shot.type", str(file)]
    first = runner.invoke(main, args)
    assert first.exit_code == 1, first.output  # three of the six tasks cannot be imported
    assert "3/6 tasks imported; images: 3 added, 0 already there" in first.output
    assert "remote_url_refused" in first.output and "[not imported]" in first.output
    good = tmp_path / "good.json"
    good.write_text(json.dumps([t for t in ls_export if t["id"] in (101, 102, 105)]))
    again = runner.invoke(main, [*args[:-1], str(good)])
    assert again.exit_code == 0, again.output
    assert "3/3 tasks imported; images: 0 added, 3 already there; predictions: 0 added" in again.output
    assert "labels verified: 0 (8 unchanged)" in again.output
    bad = runner.invoke(
        main, ["import-labelstudio", "--project", project["slug"], "--map", "nonsense", str(file)]
    )
    assert bad.exit_code == 2 and "FROM_NAME=CATEGORY_KEY" in bad.output
    missing = runner.invoke(main, ["import-labelstudio", "--project", "no-such-project", str(file)])
    assert missing.exit_code == 1 and "no project" in missing.output

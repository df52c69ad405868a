from __future__ import annotations

from typing import Any

from click.testing import CliRunner

from server.cli import main
from server.core import runtime
from server.images import repository as images
from server.projects import repository as projects
from server.sources import repository as sources


def test_demo_ingests_synthetic_people_and_ingesting_the_folder_again_adds_nothing(
    env: dict[str, Any],
) -> None:
    runner = CliRunner()
    created = runner.invoke(main, ["demo", "--count", "12", "--seed", "3", "--wait"])
    assert created.exit_code == 0, created.output
    with runtime.database().session_scope() as session:
        project = projects.project_by_slug(session, "demo")
        assert project is not None
        project_id = project.id
        assert images.stage_counts(session, project_id) == {"prelabeled": 12}

    again = runner.invoke(main, ["ingest", "--project", "demo", "--folder", "demo-people-12-seed3/images"])
    assert again.exit_code == 0, again.output
    with runtime.database().session_scope() as session:
        latest = sources.runs_of(session, project_id, 1)[0]
        assert (latest.status, latest.added, latest.duplicates) == ("succeeded", 0, 12)
        assert images.stage_counts(session, project_id) == {"prelabeled": 12}
    # The ground truth stays beside the images folder, out of the labelers' sight.
    demo_folder = env["sources"] / "demo-people-12-seed3"
    assert (demo_folder / "ground_truth.jsonl").is_file()
    assert not list((demo_folder / "images").glob("*.jsonl"))


def test_demo_is_not_created_twice(env: dict[str, Any]) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["demo", "--count", "4", "--wait"]).exit_code == 0
    second = runner.invoke(main, ["demo", "--count", "4"])
    assert second.exit_code == 0
    assert "exists" in second.output


def test_ingest_refuses_a_folder_outside_the_source_roots(env: dict[str, Any]) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["demo", "--count", "2", "--wait"]).exit_code == 0
    result = runner.invoke(main, ["ingest", "--project", "demo", "--folder", "../../etc"])
    assert result.exit_code == 1
    assert "Error:" in result.output and ".." in result.output

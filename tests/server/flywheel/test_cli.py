"""`annotate-anyone demo --simulate R` and `round list|start|rollback` through the real services."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from server.cli import main
from server.core import runtime
from server.orm import Assignment, EvalSetMember, ModelVersion, Round


def test_a_simulated_demo_turns_the_flywheel_and_rounds_are_listed_and_rolled_back(
    env: dict[str, Any],
) -> None:
    if not env["database_url"].startswith("sqlite"):
        pytest.skip("the demo is the embedded stack's (SQLite); rounds on Postgres: test_rounds.py")
    runner = CliRunner()
    result = runner.invoke(main, ["demo", "--simulate", "2", "--batch", "8", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert result.output.count("round ") >= 2
    with runtime.database().session_scope() as session:
        rounds = list(session.scalars(select(Round).order_by(Round.number)))
        assert [r.number for r in rounds] == [1, 2]
        assert all(r.status in ("promoted", "rejected") and r.reasons for r in rounds)
        assert session.scalar(select(func.count()).select_from(EvalSetMember)) == 2
        # The simulated person emptied the queue each turn.
        assert session.scalar(select(func.count()).where(Assignment.status == "queued")) == 0
        retired = session.scalar(
            select(ModelVersion.id).where(ModelVersion.status.in_(("retired", "active")))
        )
    listed = runner.invoke(main, ["round", "list", "--project", "demo-flywheel", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [json.loads(line)["number"] for line in listed.output.splitlines()] == [1, 2]
    back = runner.invoke(main, ["round", "rollback", "--project", "demo-flywheel", "--to", str(retired)])
    assert back.exit_code == 0, back.output
    assert f"model version {retired}" in back.output
    unknown = runner.invoke(main, ["round", "start", "--project", "nope"])
    assert unknown.exit_code == 1 and "no project" in unknown.output
    shown = runner.invoke(main, ["eval-set", "--project", "demo-flywheel"])
    assert shown.exit_code == 0 and json.loads(shown.output)["size"] == 2

"""Simulated annotators working the real review queue, for the live demo and the flywheel bench.

A simulated person leases work through `server.assignments.service` exactly as the API does
(next, submit with the label versions it saw) and answers from the ground truth that
`server.demo.synthetic` wrote beside the images, wrong on a set share of fields (a uniformly
drawn other value). A field whose category does not apply to the person drawn (ground truth
None) is answered None: the review screen hides it from the person's own answers, so it is not
counted as a decision.

`demo_taxonomy_yaml()` is human-v1 cut down to the categories the generator draws, with the
generator's rules as `when` conditions, so every field has a ground truth.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from server.assignments import service as assignments
from server.assignments.schemas import Answer, SubmitIn
from server.core import runtime
from server.demo.synthetic import VOCABULARY, generate_dataset
from server.orm import Image, Project, User
from server.projects.policy import access
from server.sources import service as sources
from server.taxonomy.service import default_yaml

Truth = dict[str, str | None]
# The generator's own rules where they differ from human-v1's conditions.
_CONDITIONS: Mapping[str, dict[str, Any]] = {
    "shoes.color": {"category": "shot.type", "equals": "full_body"},
    "bag.type": {"category": "shot.type", "in": ["full_body", "nearly_full_body", "upper_body"]},
}
SECONDS_PER_FIELD = 3.0
SECONDS_PER_ASSIGNMENT = 2.0


def demo_taxonomy_yaml() -> str:
    spec = yaml.safe_load(default_yaml("human-v1"))
    regions = []
    for region in spec["regions"]:
        kept = []
        for category in region["categories"]:
            key = f"{region['key']}.{category['key']}"
            if key not in VOCABULARY:
                continue
            if key in _CONDITIONS:
                category["when"] = _CONDITIONS[key]
            kept.append(category)
        if kept:
            regions.append({**region, "categories": kept})
    spec["name"] = "human-v1-synthetic"
    spec["description"] = "human-v1 restricted to what server.demo.synthetic draws"
    spec["regions"] = regions
    return str(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))


def add_batch(
    project_id: int, user_id: int, root: Path, name: str, count: int, seed: int
) -> dict[int, Truth]:
    """Draw `count` people into `root/name`, ingest them through a folder source (the pipeline
    runs as the configured job sender does), and return image id -> ground truth."""
    folder = root / name
    if not (folder / "ground_truth.jsonl").exists():
        generate_dataset(folder, count, seed=seed)
    with runtime.database().session_scope() as session:
        project = session.get(Project, project_id)
        assert project is not None
        source = sources.create_folder_source(
            session, project, name, str((folder / "images").relative_to(root)), [root], user_id=user_id
        )
        sources.start_run(session, source)
    return truth_of(project_id, folder / "ground_truth.jsonl")


def truth_of(project_id: int, path: Path) -> dict[int, Truth]:
    by_sha = {
        line["sha256"]: dict(line["attributes"])
        for line in map(json.loads, path.read_text(encoding="utf-8").splitlines())
    }
    with runtime.database().session_scope() as session:
        rows = session.execute(
            select(Image.id, Image.sha256).where(
                Image.project_id == project_id, Image.sha256.in_(list(by_sha))
            )
        )
        return {int(i): by_sha[sha] for i, sha in rows}


@dataclass
class WorkLog:
    """What people did: decisions (fields decided), changes (decisions that moved a value)."""

    assignments: Counter[str] = field(default_factory=Counter)
    decisions: Counter[str] = field(default_factory=Counter)
    changes: int = 0
    seconds: float = 0.0

    @property
    def total_decisions(self) -> int:
        return sum(self.decisions.values())


def work_queue(
    project_id: int,
    user_ids: Sequence[int],
    truth: Mapping[int, Truth],
    error_rate: float,
    rng: random.Random,
    *,
    limit: int | None = None,
) -> WorkLog:
    """The team takes and submits assignments, each person in turn until the queue serves them
    nothing, until it serves none of them anything (or `limit` in all). A team, not one person:
    an evaluation subject's second pass goes to someone other than its first."""
    log = WorkLog()
    while True:
        before = sum(log.assignments.values())
        for user_id in user_ids:
            _work(project_id, user_id, truth, error_rate, rng, log, limit)
        done = sum(log.assignments.values())
        if done == before or (limit is not None and done >= limit):
            return log


def _work(
    project_id: int,
    user_id: int,
    truth: Mapping[int, Truth],
    error_rate: float,
    rng: random.Random,
    log: WorkLog,
    limit: int | None,
) -> None:
    while limit is None or sum(log.assignments.values()) < limit:
        with runtime.database().session_scope() as session:
            user = session.get(User, user_id)
            assert user is not None
            grant = access(session, user, project_id)
            assignment = assignments.next_for(session, grant)
            if assignment is None:
                return
            image_truth = truth.get(assignment.image.id, {})
            answers = []
            decided = 0
            for category in assignment.categories:
                value: Any = image_truth.get(category.key)
                if value is not None:
                    decided += 1
                    if rng.random() < error_rate:
                        value = rng.choice([v.key for v in category.values if v.key != value])
                label = category.label
                if label is not None and label.value != value:
                    log.changes += 1
                answers.append(
                    Answer(
                        category_id=category.id,
                        value=value,
                        label_version=label.version if label is not None else None,
                    )
                )
            seconds = SECONDS_PER_ASSIGNMENT + SECONDS_PER_FIELD * decided
            row, _ = assignments.assignment_for(session, user, assignment.id)
            assignments.submit(
                session,
                row,
                user,
                grant.project,
                SubmitIn(client_id=uuid.uuid4().hex, answers=answers, lead_time_ms=int(seconds * 1000)),
            )
            log.assignments[assignment.kind] += 1
            log.decisions[assignment.kind] += decided
            log.seconds += seconds


def add_second_person(project_id: int) -> int:
    """A simulated reviewer beside the lead (evaluation passes go to different people)."""
    from server.auth import service as auth_service
    from server.core.security import new_token
    from server.orm import Membership
    from server.orm.enums import Role

    with runtime.database().session_scope() as session:
        user = auth_service.create_user(
            session, f"simulated-reviewer-{project_id}-{uuid.uuid4().hex[:8]}@example.com", new_token()
        )
        session.add(Membership(project_id=project_id, user_id=user.id, role=Role.reviewer.value))
        session.flush()
        return user.id


def create_project(lead_id: int, slug: str, *, eval_size: int, audit_share: float) -> int:
    """A project on the demo taxonomy, gold off (the simulation has no gold), or the existing one."""
    from server.projects import repository as projects_repository
    from server.projects import service as projects
    from server.projects.schemas import ProjectSettings
    from server.taxonomy import service as taxonomy

    with runtime.database().session_scope() as session:
        existing = projects_repository.project_by_slug(session, slug)
        if existing is not None:
            return existing.id
        lead = session.get(User, lead_id)
        assert lead is not None
        settings = ProjectSettings()
        settings.review.gold_share = 0
        settings.audit_share = audit_share
        settings.flywheel.eval_set_size = eval_size
        project = projects.create_project(
            session, lead, "Demo: the flywheel on synthetic people", slug=slug, settings=settings
        )
        taxonomy.add_version(session, project, demo_taxonomy_yaml(), user_id=lead.id)
        return project.id


def _wait(check: Any, timeout: float, what: str) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _ingested(project_id: int, truth_path: Path, count: int) -> dict[int, Truth] | None:
    """The batch's truth by image id once every image is pre-labelled or filtered."""
    from server.orm.enums import ImageStage

    truth = truth_of(project_id, truth_path)
    if len(truth) < count:
        return None
    with runtime.database().session_scope() as session:
        stages = list(session.scalars(select(Image.stage).where(Image.id.in_(list(truth)))))
    settled = (ImageStage.prelabeled.value, ImageStage.filtered.value)
    return truth if all(s in settled for s in stages) else None


def _round_status(round_id: int) -> str:
    from server.orm import Round

    with runtime.database().session_scope() as session:
        round_ = session.get(Round, round_id)
        return round_.status if round_ is not None else "missing"


def run_rounds(
    project_id: int,
    lead_id: int,
    root: Path,
    *,
    rounds: int,
    batch: int,
    seed: int = 0,
    error_rate: float = 0.02,
    eval_size: int = 100,
    timeout: float = 1800,
) -> list[dict[str, Any]]:
    """R turns of the flywheel with two simulated people (the lead and a reviewer): new people
    arrive, the evaluation set is reserved (first turn), they work the queue, a round trains and
    is judged. Works with inline jobs or real workers (it waits on database state). Returns one
    summary per turn."""
    from server.flywheel import service as flywheel
    from server.orm import Round

    rng = random.Random(seed)
    truth: dict[int, Truth] = {}
    summaries = []
    team = [lead_id, add_second_person(project_id)]
    for turn in range(rounds):
        name = f"flywheel-{project_id}-{seed}-{turn}-{uuid.uuid4().hex[:6]}"
        add_batch(project_id, lead_id, root, name, batch, seed * 1000 + turn)
        path = root / name / "ground_truth.jsonl"
        _wait(lambda p=path: _ingested(project_id, p, batch) is not None, timeout, "pre-labels")
        batch_truth = _ingested(project_id, path, batch) or {}
        truth.update(batch_truth)
        with runtime.database().session_scope() as session:
            project = session.get(Project, project_id)
            assert project is not None
            if flywheel.eval_set(session, project).size == 0:
                flywheel.grow_eval_set(session, project, min(eval_size, len(batch_truth)))
        log = work_queue(project_id, team, truth, error_rate, rng)
        with runtime.database().session_scope() as session:
            project = session.get(Project, project_id)
            assert project is not None
            round_id = flywheel.start_round(session, project, "demo").id
        _wait(
            lambda r=round_id: _round_status(r) not in ("queued", "training"),
            timeout,
            f"round {round_id}",
        )
        with runtime.database().session_scope() as session:
            round_ = session.get(Round, round_id)
            assert round_ is not None
            summaries.append(
                {
                    "round": round_.number,
                    "status": round_.status,
                    "reasons": [r.get("detail") for r in round_.reasons] or [round_.error],
                    "images": len(batch_truth),
                    "human_decisions": log.total_decisions,
                }
            )
    return summaries

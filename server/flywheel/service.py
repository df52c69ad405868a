"""The flywheel: the evaluation set, rounds (train, evaluate, promote or reject, re-label,
re-route), rollback, and the figures a lead watches.

    start_round --(cpu.flywheel.round)--> build TrainJob --(gpu.train)--> TrainResult
      --(cpu.persist_training)--> store the candidate's evaluation predictions, score candidate
      and baseline per category, gate: promote | reject (reasons recorded either way)
      promote --(cpu.flywheel.relabel)--> dispatch pre-labels of every undecided subject with the
      promoted version; their persist re-routes them (server.assignments.routing)

Training reads labels people decided (verified, gold) and never an evaluation-set subject; a
rejected round writes no label.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.assignments import service as assignments
from server.core import jobs, tasknames
from server.core.config import get_settings
from server.core.errors import BadRequest, Conflict, NotFound
from server.core.storage import ObjectStorage
from server.core.time import utcnow
from server.core.upsert import insert_ignore
from server.dashboard import service as dashboard
from server.flywheel import measures, repository
from server.flywheel.schemas import (
    AuditOut,
    CategoryScoreOut,
    EvalSetOut,
    FlywheelOut,
    RoundOut,
)
from server.labelers import service as labelers
from server.orm import Category, EvalSetMember, ModelVersion, Prediction, Project, Round
from server.orm.enums import ModelStatus
from server.prelabel import service as prelabel
from server.prelabel.categories import contract_categories, from_contract_value, normalise_distribution
from server.projects.schemas import ProjectSettings
from server.webhooks import service as webhooks
from workers import contracts

log = structlog.get_logger(__name__)

TAXONOMY_DEFAULT_THRESHOLD = 0.85  # server.taxonomy.format's default for a category
RELABEL_CHUNK = 256
ACTIVITY = "flywheel_activity"  # the beat's stored lifetime activity (server.dashboard)


def _settings(project: Project) -> ProjectSettings:
    return ProjectSettings.model_validate(project.settings)


def _categories(session: Session, project: Project) -> list[Category]:
    assert project.taxonomy_version_id is not None
    include_sensitive = _settings(project).include_sensitive
    return [
        c
        for c in repository.categories(session, project.taxonomy_version_id)
        if include_sensitive or not c.sensitive
    ]


# -- the evaluation set ----------------------------------------------------------------------


def eval_set(session: Session, project: Project) -> EvalSetOut:
    members = repository.eval_subject_ids(session, project.id)
    truth = repository.eval_truth(session, project.id)
    return EvalSetOut(
        size=len(members),
        target_size=_settings(project).flywheel.eval_set_size,
        labeled=sum(1 for s in members if s in truth),
        fields_labeled=sum(len(v) for v in truth.values()),
    )


def grow_eval_set(session: Session, project: Project, size: int) -> EvalSetOut:
    """Reserve subjects until the evaluation set holds `size`: a stratified random sample of
    pre-labelled subjects nobody decided yet (strata: the first category's label, e.g. the shot
    type), proportional per stratum. Members never leave it; each gets an `eval` assignment."""
    if project.taxonomy_version_id is None:
        raise BadRequest("the project has no taxonomy", code="no_taxonomy")
    members = repository.eval_subject_ids(session, project.id)
    if size < len(members):
        raise Conflict(
            f"the evaluation set holds {len(members)} subjects and never shrinks", code="eval_set_shrink"
        )
    wanted = size - len(members)
    categories = _categories(session, project)
    stratify = next((c.id for c in categories if c.kind == "single" and c.when is None), None)
    candidates = repository.eval_candidates(session, project.id, stratify)
    if wanted > len(candidates):
        raise Conflict(
            f"only {len(candidates)} undecided subjects can join the evaluation set", code="too_few_subjects"
        )
    chosen = _stratified(candidates, wanted, random.Random(f"eval:{project.id}:{len(members)}"))
    for subject_id, stratum in chosen:
        session.add(EvalSetMember(project_id=project.id, subject_id=subject_id, stratum=stratum[:200]))
    settings = _settings(project)
    settings.flywheel.eval_set_size = size
    project.settings = settings.model_dump(mode="json")
    session.flush()
    assignments.route_cold_start(session, project, [s for s, _ in chosen])
    return eval_set(session, project)


def _stratified(candidates: Sequence[tuple[int, str]], n: int, rng: random.Random) -> list[tuple[int, str]]:
    """Proportional allocation with largest remainders; each stratum sampled without replacement."""
    if n <= 0:
        return []
    strata: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for candidate in candidates:
        strata[candidate[1]].append(candidate)
    total = len(candidates)
    quotas = {k: n * len(v) / total for k, v in strata.items()}
    counts = {k: int(q) for k, q in quotas.items()}
    for k in sorted(quotas, key=lambda k: (-(quotas[k] - counts[k]), k))[: n - sum(counts.values())]:
        counts[k] += 1
    chosen: list[tuple[int, str]] = []
    for k in sorted(strata):
        chosen += rng.sample(strata[k], counts[k])
    return chosen


# -- scoring ---------------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return sorted(a) == sorted(b)
    return bool(a == b)


def evaluate(session: Session, project: Project, version_id: int) -> dict[str, Any]:
    """Per category: accuracy on the evaluation set (what people answered, where the category
    applies), its Wilson interval, the confidence cut for the target precision, and trust."""
    settings = _settings(project)
    truth = repository.eval_truth(session, project.id)
    predicted = repository.predictions(session, list(truth), version_id)
    scores: dict[str, Any] = {}
    for category in _categories(session, project):
        outcomes: list[tuple[float, bool]] = []
        for subject_id, answers in truth.items():
            answer = answers.get(category.id)
            if category.id not in answers or answer is None:
                continue
            value, confidence = predicted.get(subject_id, {}).get(category.id, (None, 0.0))
            outcomes.append((confidence, _same(value, answer)))
        if not outcomes:
            continue
        # A threshold the taxonomy sets for its category wins; otherwise the project's default.
        threshold = (
            category.trust_threshold
            if category.trust_threshold != TAXONOMY_DEFAULT_THRESHOLD
            else settings.default_trust_threshold
        )
        scores[category.key] = measures.score(
            outcomes, threshold, settings.flywheel.min_support, settings.flywheel.target_precision
        ).as_dict()
    macro = measures.macro_accuracy(s["accuracy"] for s in scores.values())
    return {"categories": scores, "macro_accuracy": macro, "eval_subjects": len(truth)}


def gate(
    candidate: dict[str, Any], baseline: dict[str, Any], margin: float, *, cold_start: bool = False
) -> tuple[bool, list[dict[str, Any]]]:
    """Promote only if macro accuracy rises and no category falls by more than `margin`.

    A fall counts when it exceeds the margin beyond sampling noise (`measures.fell_beyond`);
    scores without their counts are compared as they stand.

    Against the cold-start labeler (never evaluated, so trusted with nothing and deciding no
    field) only the macro accuracy is compared: its per-category hits are the majority value it
    happens to default to, and nothing people rely on can fall.
    """
    reasons: list[dict[str, Any]] = []
    new, old = candidate.get("macro_accuracy"), baseline.get("macro_accuracy")
    if new is None:
        return False, [
            {"code": "no_evaluation", "detail": "no evaluation-set answers to judge the candidate on"}
        ]
    if old is not None and new <= old:
        reasons.append(
            {"code": "macro_not_better", "detail": f"macro accuracy {new:.4f} does not beat {old:.4f}"}
        )
    for key, score in sorted(candidate["categories"].items()):
        if cold_start:
            break
        previous = baseline.get("categories", {}).get(key, {})
        before = previous.get("accuracy")
        if before is not None and score["accuracy"] is not None and _fell(previous, score, margin):
            reasons.append(
                {
                    "code": "category_fell",
                    "category": key,
                    "detail": f"{key}: {score['accuracy']:.4f} < {before:.4f} - {margin}, beyond noise",
                }
            )
    if reasons:
        return False, reasons
    improvement = "first evaluated version" if old is None else f"macro accuracy {old:.4f} -> {new:.4f}"
    return True, [{"code": "promoted", "detail": f"{improvement}; no category fell by more than {margin}"}]


def _fell(before: dict[str, Any], after: dict[str, Any], margin: float) -> bool:
    if "support" in before and "support" in after:
        return measures.fell_beyond(
            (int(before["correct"]), int(before["support"])),
            (int(after["correct"]), int(after["support"])),
            margin,
        )
    return bool(before["accuracy"] - after["accuracy"] > margin)


# -- rounds ----------------------------------------------------------------------------------


def start_round(session: Session, project: Project, trigger: str = "manual") -> Round:
    """Queue a round; `cpu.flywheel.round` builds its training job after the commit."""
    if repository.running_round(session, project.id) is not None:
        raise Conflict("a round is already running in this project", code="round_running")
    number = repository.next_round_number(session, project.id)
    baseline = labelers.active_labeler(session, project)
    round_ = Round(
        project_id=project.id,
        number=number,
        status="queued",
        trigger=trigger,
        baseline_id=baseline.id,
        reasons=[],
        metrics={},
        started_at=utcnow(),
    )
    session.add(round_)
    session.flush()
    jobs.enqueue(session, tasknames.FLYWHEEL_ROUND, round_id=round_.id)
    return round_


def build_training(session: Session, storage: ObjectStorage, round_id: int) -> contracts.TrainJob | None:
    """The queued round's TrainJob (sent to the GPU queue), or None when it cannot train."""
    round_ = session.get(Round, round_id)
    if round_ is None or round_.status != "queued":
        return None  # a redelivered message: already built
    project = session.get(Project, round_.project_id)
    assert project is not None and project.taxonomy_version_id is not None
    settings = _settings(project)
    trainer = settings.flywheel.trainer
    categories = _categories(session, project)
    by_id = {c.id: c for c in categories}
    specs = contract_categories(prelabel.categories_for_project(session, project), settings.include_sensitive)
    trainable = {s.key for s in specs if trainer != "heads" or s.kind != "text"}
    answers: dict[int, dict[str, contracts.Value]] = defaultdict(dict)
    for subject_id, category_id, value in repository.verified_labels(
        session, project.id, project.taxonomy_version_id
    ):
        category = by_id.get(category_id)
        if category is None or value is None or category.key not in trainable:
            continue
        answers[subject_id][category.key] = value  # booleans stay bools, as predictions are
    evaluation = sorted(repository.eval_subject_ids(session, project.id))
    leaked = set(answers) & set(evaluation)
    if leaked:  # the repository excludes them; this is the invariant, checked where it matters
        raise RuntimeError(f"evaluation subjects in a training set: {sorted(leaked)[:5]}")
    if not answers:
        _finish(session, round_, "failed", error="no verified labels to train on")
        return None
    base = settings.pipeline.backbone if trainer == "heads" else settings.pipeline.labeler
    images = repository.images_of_subjects(session, [*answers, *evaluation])
    vectors = (
        repository.vectors(session, [i.id for i in images.values()], base.ref) if trainer == "heads" else {}
    )
    name = f"project-{project.id}-{trainer}"
    version = f"round-{round_.number}"
    output_dir = get_settings().data_dir / "models" / f"project-{project.id}" / f"round-{round_.number}"
    candidate = ModelVersion(
        project_id=project.id,
        family="heads" if trainer == "heads" else "vqa",
        version=f"{name}@{version}#{round_.id}",
        spec={},
        status=ModelStatus.candidate.value,
        artifact_key=str(output_dir),
        parent_id=round_.baseline_id,
    )
    session.add(candidate)
    session.flush()

    def image(subject_id: int) -> contracts.PrelabelImage:
        row = images[subject_id]
        vector = vectors.get(row.id)
        return contracts.PrelabelImage(
            image_id=row.id,
            uri=storage.uri(row.storage_key),
            sha256=prelabel.stored_sha256(row),
            embedding_b64=contracts.encode_vector(vector) if vector is not None else None,
        )

    job = contracts.TrainJob(
        round_id=round_.id,
        project_id=project.id,
        model_version_id=candidate.id,
        trainer=trainer,
        base=base,
        categories=[s for s in specs if s.key in trainable],
        examples=[
            contracts.TrainExample(image=image(s), answers=a)
            for s, a in sorted(answers.items())
            if s in images
        ],
        evaluate=[image(s) for s in evaluation if s in images],
        output_dir=str(output_dir),
        version=version,
        options={"seed": round_.number, **settings.flywheel.train_options},
    )
    round_.status, round_.candidate_id = "training", candidate.id
    round_.metrics = {"examples": len(job.examples), "eval_subjects": len(job.evaluate)}
    jobs.enqueue(session, contracts.TRAIN, queue=contracts.GPU_QUEUE, payload=job.model_dump(mode="json"))
    return job


def _finish(session: Session, round_: Round, status: str, *, error: str | None = None) -> None:
    round_.status = status
    round_.decision = status if status in ("promoted", "rejected") else None
    round_.error = error
    round_.finished_at = utcnow()
    project = session.get(Project, round_.project_id)
    if project is not None and round_.started_at is not None:
        round_.activity = round_activity(session, project, round_)
    webhooks.emit(
        session,
        round_.project_id,
        "round.finished",
        {
            "round_id": round_.id,
            "number": round_.number,
            "status": status,
            "candidate_id": round_.candidate_id,
            "reasons": [r.get("code") for r in round_.reasons if isinstance(r, dict)],
            "error": error,
        },
    )


def persist_training(session: Session, result: contracts.TrainResult) -> str:
    """Judge the candidate; promote it (and re-label) or reject it. Returns the round's status."""
    round_ = session.get(Round, result.round_id)
    if round_ is None or round_.status != "training":
        return round_.status if round_ is not None else "missing"  # redelivered
    project = session.get(Project, round_.project_id)
    candidate = session.get(ModelVersion, result.model_version_id)
    assert project is not None and candidate is not None
    if result.error is not None or result.model is None:
        candidate.status = ModelStatus.rejected.value
        _finish(session, round_, "failed", error=(result.error or "training returned no model")[:2000])
        return round_.status
    candidate.spec = result.model.model_dump(mode="json")
    _store_predictions(session, project, candidate.id, result.predictions)
    session.flush()
    scored = evaluate(session, project, candidate.id)
    baseline = session.get(ModelVersion, round_.baseline_id) if round_.baseline_id else None
    baseline_scored = evaluate(session, project, baseline.id) if baseline is not None else {}
    promote, reasons = gate(
        scored,
        baseline_scored,
        _settings(project).flywheel.promotion_margin,
        cold_start=baseline is None or not baseline.metrics.get("categories"),
    )
    candidate.metrics = scored
    round_.reasons = reasons
    round_.metrics = {
        **round_.metrics,
        "examples": result.examples or round_.metrics.get("examples", 0),
        "training": dict(result.metrics),
        "candidate": scored,
        "baseline": baseline_scored,
    }
    if not promote:
        candidate.status = ModelStatus.rejected.value
        _finish(session, round_, "rejected")
        log.info("flywheel.round_rejected", round_id=round_.id, reasons=[r["code"] for r in reasons])
        return round_.status
    labelers.promote(session, project, candidate)
    _finish(session, round_, "promoted")
    relabel(session, project)
    log.info("flywheel.round_promoted", round_id=round_.id, macro=scored.get("macro_accuracy"))
    return round_.status


def _store_predictions(
    session: Session, project: Project, version_id: int, items: Sequence[contracts.PrelabelItem]
) -> None:
    """The candidate's answers on the evaluation images, as ordinary predictions (no label moves)."""
    categories = {c.key: c for c in _categories(session, project)}
    subjects = repository.first_subjects(session, [i.image_id for i in items])
    now = utcnow()
    rows = []
    for item in items:
        subject_id = subjects.get(item.image_id)
        if subject_id is None or item.error is not None:
            continue
        for key, prediction in item.predictions.items():
            category = categories.get(key)
            if category is None:
                continue
            rows.append(
                {
                    "subject_id": subject_id,
                    "category_id": category.id,
                    "model_version_id": version_id,
                    "value": from_contract_value(category, prediction.value),
                    "confidence": prediction.confidence,
                    "distribution": normalise_distribution(category, prediction.distribution),
                    "created_at": now,
                }
            )
    insert_ignore(session, Prediction.__table__, rows, ["subject_id", "category_id", "model_version_id"])  # type: ignore[arg-type]


def relabel(session: Session, project: Project) -> int:
    """Pre-label every subject a person has not fully decided with the active version; each
    persisted batch re-routes its subjects. Returns how many images were asked for."""
    image_ids = repository.undecided_image_ids(session, project.id)
    for start in range(0, len(image_ids), RELABEL_CHUNK):
        jobs.enqueue(session, tasknames.FLYWHEEL_RELABEL, image_ids=image_ids[start : start + RELABEL_CHUNK])
    return len(image_ids)


def dispatch_relabel(session: Session, storage: ObjectStorage, image_ids: Sequence[int]) -> int:
    from server.orm.enums import ImageStage

    return prelabel.dispatch_prelabel(session, storage, image_ids, stages=(ImageStage.prelabeled,))


def rollback(session: Session, project: Project, version_id: int) -> ModelVersion:
    if repository.running_round(session, project.id) is not None:
        raise Conflict("a round is running; roll back after it finishes", code="round_running")
    version = labelers.rollback(session, project, version_id)
    relabel(session, project)
    return version


def promote_rejected(
    session: Session, project: Project, version_id: int, user_id: int, reason: str
) -> ModelVersion:
    """A lead overrides the gate: the candidate a round rejected becomes the active labeler. Its
    evaluation stays what the round measured, so routing trusts only what it earned."""
    if repository.running_round(session, project.id) is not None:
        raise Conflict("a round is running; promote after it finishes", code="round_running")
    version = labelers.version_of(session, project.id, version_id)
    if version.status != ModelStatus.rejected.value:
        raise Conflict(
            f"model version {version_id} is {version.status}: only a rejected candidate is promoted "
            "this way (an earlier active version comes back by rollback)",
            code="not_rejected",
        )
    if not version.metrics.get("categories"):
        raise Conflict(f"model version {version_id} was never evaluated", code="not_evaluated")
    override = {"user_id": user_id, "reason": reason, "at": utcnow().isoformat()}
    version.metrics = {**version.metrics, "promoted_by_lead": override}
    labelers.promote(session, project, version)
    relabel(session, project)
    log.info("flywheel.promoted_by_lead", model_version_id=version.id, user_id=user_id)
    return version


def due_rounds(session: Session, now: datetime | None = None) -> list[int]:
    """Start rounds where enough new verified subjects arrived, or the schedule says so."""
    now = now or utcnow()
    started: list[int] = []
    for project in session.scalars(select(Project).where(Project.deleted_at.is_(None))):
        flywheel = _settings(project).flywheel
        if project.taxonomy_version_id is None or repository.running_round(session, project.id) is not None:
            continue
        since = repository.last_round_start(session, project.id)
        trigger = None
        if flywheel.auto_round_after and (
            repository.decided_subjects_since(session, project.id, since) >= flywheel.auto_round_after
        ):
            trigger = "auto"
        elif (
            flywheel.round_every_hours is not None
            and since is not None
            and now - since >= timedelta(hours=flywheel.round_every_hours)
            and repository.decided_subjects_since(session, project.id, since) > 0
        ):
            trigger = "schedule"
        if trigger is not None:
            started.append(start_round(session, project, trigger).id)
    return started


# -- reading ---------------------------------------------------------------------------------


def rounds(session: Session, project: Project) -> list[RoundOut]:
    return [round_out(session, project, r) for r in repository.rounds(session, project.id)]


def round_of(session: Session, project: Project, round_id: int) -> Round:
    round_ = session.get(Round, round_id)
    if round_ is None or round_.project_id != project.id:
        raise NotFound("no such round")
    return round_


def round_activity(session: Session, project: Project, round_: Round) -> dict[str, Any]:
    """The work that fed a round: since the previous round started, until it started. A finished
    round stored it (`_finish`); a round still running is counted now."""
    if round_.activity is not None:
        return dict(round_.activity)
    previous = [r.started_at for r in repository.rounds(session, project.id) if r.number < round_.number]
    since = max((t for t in previous if t is not None), default=None)
    return activity(session, project, since, round_.started_at)


def round_out(session: Session, project: Project, round_: Round) -> RoundOut:
    return RoundOut(
        id=round_.id,
        number=round_.number,
        status=round_.status,
        trigger=round_.trigger,
        decision=round_.decision,
        reasons=list(round_.reasons),
        candidate_id=round_.candidate_id,
        baseline_id=round_.baseline_id,
        error=round_.error,
        started_at=round_.started_at,
        finished_at=round_.finished_at,
        metrics=dict(round_.metrics),
        activity=round_activity(session, project, round_),
    )


def activity(
    session: Session, project: Project, since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    """Fields decided in a window: by people and auto-accepted, the human share, fields per
    person-hour (lead time of submitted assignments) and the audited accuracy so far."""
    decisions = repository.field_decisions(session, project.id, since, until)
    auto = decisions.get("auto_accept", 0)
    people = sum(n for reason, n in decisions.items() if reason not in ("auto_accept", "reroute"))
    hours = repository.lead_time_ms(session, project.id, since, until) / 3_600_000
    return {
        "fields_by_people": people,
        "fields_auto_accepted": auto,
        "human_share": people / (people + auto) if people + auto else None,
        "fields_per_person_hour": people / hours if hours > 0 else None,
        "audit": audit(session, project, until).model_dump(),
    }


def audit(session: Session, project: Project, until: datetime | None = None) -> AuditOut:
    outcomes = repository.audit_outcomes(session, project.id, until)
    correct = sum(1 for accepted, reviewed in outcomes if _same(accepted, reviewed))
    low, high = measures.wilson(correct, len(outcomes))
    return AuditOut(
        audited=len(outcomes),
        correct=correct,
        accuracy=correct / len(outcomes) if outcomes else None,
        low=low if outcomes else None,
        high=high if outcomes else None,
    )


def lifetime_activity(session: Session, project: Project) -> tuple[dict[str, Any], datetime]:
    """The project's activity since it began and when it was counted: as the beat stored it for
    a large project while that is fresh (counting every field decided takes seconds at
    1,000,000 subjects: server.dashboard.service), else counted now."""
    stored = dashboard.stored_while_fresh(session, project.id, ACTIVITY)
    if stored is not None:
        return dict(stored.body), stored.computed_at
    counted_at = utcnow()
    return activity(session, project, None, None), counted_at


def store_activity(session: Session, project_ids: Sequence[int] | None = None) -> list[int]:
    """The beat's count of the lifetime activity of large projects; returns the ids counted."""
    return dashboard.store_where_due(
        session, ACTIVITY, lambda project: activity(session, project, None, None), project_ids
    )


def overview(session: Session, project: Project) -> FlywheelOut:
    active = labelers.active_labeler(session, project)
    scores = dict(active.metrics.get("categories", {}))
    lifetime, counted_at = lifetime_activity(session, project)
    return FlywheelOut(
        active_model_version_id=active.id,
        active_model_version=active.version,
        cold_start=not scores,
        eval_set=eval_set(session, project),
        categories=[CategoryScoreOut(key=k, **v) for k, v in sorted(scores.items())],
        trusted=sorted(k for k, v in scores.items() if v.get("trusted")),
        macro_accuracy=active.metrics.get("macro_accuracy"),
        rounds=len(repository.rounds(session, project.id)),
        activity=lifetime,
        activity_computed_at=counted_at,
    )

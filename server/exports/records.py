"""One record per exported subject, built from a snapshot's rows; every writer reads these.

A record holds only the labels the export asked for (states, sensitive categories left out
unless the project opted in) with their provenance, the caption and the CosmicMan groups.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.captions.compose import compose
from server.exports.repository import LabelAsOf, PredictionRow, SubjectRow
from server.taxonomy.format import CategorySpec, TaxonomySpec

IMAGE_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
CAPTION_TOKENS = 77
SHOT_GROUP = "shot"


@dataclass(frozen=True)
class LabelValue:
    value: Any
    state: str
    decided_by_person: bool
    model_version: str | None = None
    confidence: float | None = None


@dataclass
class ExportRecord:
    key: str  # sample key: digits only, so no dot and no path can hide in it
    subject_id: int
    image_name: str  # `<key>.<ext>`: where the image bytes go, relative to the export
    image: dict[str, Any]  # id, sha256, width, height, mime, source_id, licence, consent, quality
    subject: dict[str, Any]  # index, bbox, shot_type, detector_score, analyzer_version
    labels: dict[str, LabelValue]  # category full key -> value, in taxonomy order
    predictions: dict[str, dict[str, tuple[Any, float]]] = field(default_factory=dict)
    caption: str = ""
    storage_key: str = ""
    parsing_mask_key: str | None = None

    @property
    def ext(self) -> str:
        return self.image_name.rsplit(".", 1)[1]


def caption_of(spec: TaxonomySpec, values: Mapping[str, Any], *, include_sensitive: bool) -> str:
    return compose(spec, values, include_sensitive=include_sensitive, max_tokens=CAPTION_TOKENS)


def sample_key(subject_id: int) -> str:
    return f"{subject_id:010d}"


@dataclass(frozen=True)
class _Category:
    spec: CategorySpec
    full_key: str
    region: str
    key: str
    group: str | None
    position: int
    words: dict[str, str]  # value key -> caption words (else label)


class _SpecIndex:
    """What the writers look up per label, read once per taxonomy (pydantic attribute access
    is slow in a loop over every label of every sample)."""

    def __init__(self, spec: TaxonomySpec) -> None:
        self.spec = spec
        self.categories: dict[str, _Category] = {}
        for position, category in enumerate(spec.categories()):
            full_key = category.full_key
            self.categories[full_key] = _Category(
                spec=category,
                full_key=full_key,
                region=full_key.partition(".")[0],
                key=category.key,
                group=category.caption.group,
                position=position,
                words={v.key: v.caption or v.label or v.key for v in category.values},
            )
        referenced: set[str] = set()
        for category in spec.categories():
            if category.when is not None:
                referenced |= category.when.referenced_categories()
        self.referenced = sorted(referenced)
        self.groups = [g for g in spec.caption_groups if g.key != SHOT_GROUP]
        self.group_ids = [list(g.parsing_ids) for g in self.groups]
        self._applicable: dict[str, frozenset[str]] = {}

    def applicable(self, values: Mapping[str, Any]) -> frozenset[str]:
        """The taxonomy's applicable categories; they depend only on the values conditions read."""
        memo = json.dumps([values.get(k) for k in self.referenced], default=str)
        known = self._applicable.get(memo)
        if known is None:
            known = frozenset(c.full_key for c in self.spec.applicable_categories(values))
            self._applicable[memo] = known
        return known

    def words(self, full_key: str, value: Any) -> Any:
        category = self.categories[full_key]
        if value is None or category.spec.kind == "text":
            return value
        if isinstance(value, list):
            return [self.words(full_key, v) for v in value]
        lookup = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return category.words.get(lookup, lookup)


_INDEXES: dict[int, _SpecIndex] = {}


def spec_index(spec: TaxonomySpec) -> _SpecIndex:
    index = _INDEXES.get(id(spec))
    if index is None or index.spec is not spec:
        if len(_INDEXES) > 16:
            _INDEXES.clear()
        index = _INDEXES[id(spec)] = _SpecIndex(spec)
    return index


def build_records(
    spec: TaxonomySpec,
    rows: Sequence[SubjectRow],
    labels: Sequence[LabelAsOf],
    category_keys: Mapping[int, str],
    model_names: Mapping[int, str],
    *,
    states: Collection[str],
    include_sensitive: bool,
    predictions: Sequence[PredictionRow] = (),
) -> list[ExportRecord]:
    """`category_keys`: category id -> full key, for the snapshot's taxonomy version only."""
    index = spec_index(spec)
    kept = {k for k, c in index.categories.items() if include_sensitive or not c.spec.sensitive}
    by_subject: dict[int, list[tuple[str, LabelValue]]] = defaultdict(list)
    for label in labels:
        key = category_keys.get(label.category_id)
        if key is None or key not in kept or label.state not in states:
            continue
        model = model_names.get(label.model_version_id) if label.model_version_id is not None else None
        by_subject[label.subject_id].append(
            (
                key,
                LabelValue(
                    label.value, label.state, label.decided_by_user_id is not None, model, label.confidence
                ),
            )
        )
    predicted: dict[int, dict[str, dict[str, tuple[Any, float]]]] = defaultdict(dict)
    for p in predictions:
        key = category_keys.get(p.category_id)
        if key is None or key not in kept:
            continue
        name = model_names.get(p.model_version_id, str(p.model_version_id))
        predicted[p.subject_id].setdefault(name, {})[key] = (p.value, p.confidence)
    records = []
    for row in rows:
        subject, image = row.subject, row.image
        chosen = dict(sorted(by_subject.get(subject.id, []), key=lambda kv: index.categories[kv[0]].position))
        # A label whose `when` fails as of the snapshot (its parent changed) is not said.
        applicable = index.applicable({k: v.value for k, v in chosen.items()})
        chosen = {k: v for k, v in chosen.items() if k in applicable}
        key = sample_key(subject.id)
        records.append(
            ExportRecord(
                key=key,
                subject_id=subject.id,
                image_name=f"{key}.{IMAGE_EXTENSIONS.get(image.mime, 'bin')}",
                image={
                    "id": image.id,
                    "sha256": image.sha256,
                    "width": image.width,
                    "height": image.height,
                    "mime": image.mime,
                    "source_id": image.source_id,
                    "licence": image.licence,
                    "consent": image.consent,
                    "quality": dict(image.quality or {}),
                },
                subject={
                    "index": subject.index,
                    "bbox": subject.bbox,
                    "shot_type": subject.shot_type,
                    "detector_score": subject.detector_score,
                    "analyzer_version": subject.analyzer_version,
                },
                labels=chosen,
                predictions=predicted.get(subject.id, {}),
                caption=caption_of(
                    spec, {k: v.value for k, v in chosen.items()}, include_sensitive=include_sensitive
                ),
                storage_key=image.storage_key,
                parsing_mask_key=subject.parsing_mask_key,
            )
        )
    return records


def attribute_groups(spec: TaxonomySpec, record: ExportRecord) -> list[dict[str, Any] | None]:
    """CosmicMan's aa_text: per caption group after the shot phrase, attribute -> words, or null."""
    index = spec_index(spec)
    groups: dict[str, dict[str, Any]] = defaultdict(dict)
    for key, label in record.labels.items():
        category = index.categories[key]
        if category.group is None or category.group == SHOT_GROUP:
            continue
        groups[category.group][category.key] = index.words(key, label.value)
    return [groups.get(g.key) or None for g in index.groups]


def attribute_ids(spec: TaxonomySpec) -> list[list[int]]:
    return [list(ids) for ids in spec_index(spec).group_ids]


def person_type(record: ExportRecord) -> str | None:
    shot = record.labels.get("shot.type")
    if shot is not None and isinstance(shot.value, str):
        return shot.value
    return record.subject.get("shot_type")


def attributes_document(
    spec: TaxonomySpec, record: ExportRecord, snapshot: Mapping[str, Any]
) -> dict[str, Any]:
    """The WebDataset `.json` (and JSONL line): labels by region and by group, with provenance."""
    index = spec_index(spec)
    regions: dict[str, dict[str, Any]] = {}
    for key, label in record.labels.items():
        category = index.categories[key]
        regions.setdefault(category.region, {})[category.key] = {
            "value": label.value,
            "state": label.state,
            "decided_by": "person" if label.decided_by_person else "model",
            "model_version": label.model_version,
            "confidence": label.confidence,
        }
    groups = []
    for group, attributes, ids in zip(
        index.groups, attribute_groups(spec, record), index.group_ids, strict=True
    ):
        groups.append({"group": group.key, "noun": group.noun, "attributes": attributes, "parsing_ids": ids})
    return {
        "key": record.key,
        "subject_id": record.subject_id,
        "caption": record.caption,
        "person_type": person_type(record),
        "image": record.image,
        "subject": record.subject,
        "regions": regions,
        "groups": groups,
        "snapshot": dict(snapshot),
    }

"""One record per exported subject, built from a snapshot's rows; every writer reads these.

A record holds only the labels the export asked for (states, sensitive categories left out
unless the project opted in) with their provenance, the caption and the CosmicMan groups.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from operator import itemgetter
from typing import Any, NamedTuple

from server.captions.compose import applicable_keys, compose
from server.exports.repository import LabelDocument, PredictionRow, SubjectRow
from server.taxonomy.format import CategorySpec, TaxonomySpec

IMAGE_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
CAPTION_TOKENS = 77
# Kept documents (`export_documents`) name this in their variant: change it with anything that
# changes what a document holds (the caption composer, `AttributesEncoder.body`, aa_text), so
# that documents kept by the code before are not taken for current ones.
# tests/server/exports/test_documents.py fails when a document's bytes change and it did not.
DOCUMENT_VERSION = 2
# The layout of a sample's attributes document (`attributes_document`), named in the manifest:
# 1 said every label's provenance beside its value; 2 groups it (a third of the bytes).
ATTRIBUTES_FORMAT = 2
SHOT_GROUP = "shot"


class LabelValue(NamedTuple):
    value: Any
    state: str
    decided_by_person: bool
    model_version: str | None = None
    confidence: float | None = None


@dataclass(slots=True)
class ExportRecord:
    key: str  # sample key: digits only, so no dot and no path can hide in it
    subject_id: int
    image_name: str  # `<key>.<ext>`: where the image bytes go, relative to the export
    row: SubjectRow  # its subject's and image's columns
    labels: dict[str, LabelValue]  # category full key -> value, in taxonomy order
    predictions: dict[str, dict[str, tuple[Any, float]]] = field(default_factory=dict)
    caption: str = ""
    storage_key: str = ""
    parsing_mask_key: str | None = None
    # Its labels encoded (webdataset, jsonl and cosmicman parts): the writers take the pieces
    # from here. A record read from a kept document has this alone, and `labels` empty.
    document: LabelDocument | None = None

    @property
    def ext(self) -> str:
        return self.image_name.rsplit(".", 1)[1]

    @property
    def image(self) -> dict[str, Any]:
        """id, sha256, width, height, mime, source_id, licence, consent, quality."""
        row = self.row
        return {
            "id": row.image_id,
            "sha256": row.sha256,
            "width": row.width,
            "height": row.height,
            "mime": row.mime,
            "source_id": row.source_id,
            "licence": row.licence,
            "consent": row.consent,
            "quality": json.loads(_quality_text(row.quality)),
        }

    @property
    def subject(self) -> dict[str, Any]:
        """index, bbox, shot_type, detector_score, analyzer_version."""
        row = self.row
        return {
            "index": row.subject_index,
            "bbox": None if row.bbox is None else json.loads(row.bbox),
            "shot_type": row.shot_type,
            "detector_score": row.detector_score,
            "analyzer_version": row.analyzer_version,
        }


def _quality_text(text: str | None) -> str:
    """An image's quality metrics as JSON text: an object, `{}` when it has none."""
    return "{}" if text is None or text == "null" else text


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
    sensitive: bool
    words: dict[str, str] | None  # value key -> caption words (else label); None for text


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
                sensitive=category.sensitive,
                words=(
                    None
                    if category.kind == "text"
                    else {v.key: v.caption or v.label or v.key for v in category.values}
                ),
            )
        self.groups = [g for g in spec.caption_groups if g.key != SHOT_GROUP]
        self.group_ids = [list(g.parsing_ids) for g in self.groups]
        self.documents: AttributesEncoder | None = None  # `document_encoder`

    def applicable(self, values: Mapping[str, Any]) -> frozenset[str]:
        """The taxonomy's applicable categories' full keys."""
        return applicable_keys(self.spec, values)

    def words(self, full_key: str, value: Any) -> Any:
        return _words(self.categories[full_key], value)


def _words(category: _Category, value: Any) -> Any:
    words = category.words
    if value is None or words is None:
        return value
    if value.__class__ is str:
        return words.get(value, value)
    if isinstance(value, list):
        return [_words(category, v) for v in value]
    lookup = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return words.get(lookup, lookup)


_INDEXES: dict[int, _SpecIndex] = {}


def spec_index(spec: TaxonomySpec) -> _SpecIndex:
    index = _INDEXES.get(id(spec))
    if index is None or index.spec is not spec:
        if len(_INDEXES) > 16:
            _INDEXES.clear()
        index = _INDEXES[id(spec)] = _SpecIndex(spec)
    return index


def document_encoder(spec: TaxonomySpec) -> AttributesEncoder:
    """The encoder of kept documents for this taxonomy, one per process: the labels it has
    encoded serve every part after (a part has few documents to encode, and they repeat)."""
    index = spec_index(spec)
    if index.documents is None:
        index.documents = AttributesEncoder(spec, {})
    return index.documents


_position = itemgetter(0)


class _Said(NamedTuple):
    """A label row's columns but its subject and confidence, as the export keeps them."""

    position: int
    full_key: str
    value: Any  # for `remake` to copy, when it is not None
    remake: Callable[[Any], Any] | None
    state: str
    decided_by_person: bool
    model_version: str | None


def _said(
    category: _Category | None, text: str | None, state: str, by_person: bool, model_version: str | None
) -> _Said | None:
    """None: the export leaves the label out. A list of scalars is kept as a tuple and copied
    per label; other containers are parsed per label, so no two records share a container."""
    if category is None:
        return None
    value = None if text is None else json.loads(text)
    remake: Callable[[Any], Any] | None = None
    if isinstance(value, list) and not any(isinstance(v, (list, dict)) for v in value):
        value, remake = tuple(value), list
    elif isinstance(value, (list, dict)):
        value, remake = text, json.loads
    return _Said(category.position, category.full_key, value, remake, state, by_person, model_version)


def build_records(
    spec: TaxonomySpec,
    rows: Sequence[SubjectRow],
    labels: Iterable[Sequence[Any]],
    category_keys: Mapping[int, str],
    model_names: Mapping[int, str],
    *,
    states: Collection[str],
    include_sensitive: bool,
    predictions: Sequence[PredictionRow] = (),
) -> list[ExportRecord]:
    """`labels`: rows shaped as `repository.LabelAsOf`. `category_keys`: category id -> full key,
    for the snapshot's taxonomy version only."""
    index = spec_index(spec)
    kept: dict[int, _Category] = {}
    for category_id, key in category_keys.items():
        category = index.categories.get(key)
        if category is not None and (include_sensitive or not category.sensitive):
            kept[category_id] = category
    wanted = frozenset(states)
    # Labels repeat (a closed vocabulary, few states, people and models): what a row says but
    # its confidence is worked out once per distinct row.
    distinct: dict[tuple[Any, ...], _Said | None] = {}
    new = tuple.__new__  # LabelValue's own __new__ is a Python function: a frame per label
    by_subject: dict[int, list[tuple[int, str, LabelValue]]] = defaultdict(list)
    for subject_id, category_id, text, state, user_id, model_id, confidence in labels:
        columns = (category_id, text, state, user_id, model_id)
        try:
            known = distinct[columns]
        except KeyError:
            known = distinct[columns] = _said(
                kept.get(category_id) if state in wanted else None,
                text,
                state,
                user_id is not None,
                None if model_id is None else model_names.get(model_id),
            )
        if known is None:
            continue
        position, full_key, value, remake, state, by_person, model_version = known
        if remake is not None:
            value = remake(value)
        label = new(LabelValue, (value, state, by_person, model_version, confidence))
        by_subject[subject_id].append((position, full_key, label))
    predicted: dict[int, dict[str, dict[str, tuple[Any, float]]]] = defaultdict(dict)
    for p in predictions:
        category = kept.get(p.category_id)
        if category is None:
            continue
        name = model_names.get(p.model_version_id, str(p.model_version_id))
        predicted[p.subject_id].setdefault(name, {})[category.full_key] = (p.value, p.confidence)
    records = []
    for row in rows:
        said = by_subject.get(row.subject_id, [])
        said.sort(key=_position)
        values = {k: v.value for _, k, v in said}
        # A label whose `when` fails as of the snapshot (its parent changed) is not said.
        applicable = index.applicable(values)
        if applicable.issuperset(values):
            chosen = {k: v for _, k, v in said}
        else:
            chosen = {k: v for _, k, v in said if k in applicable}
            values = {k: v.value for k, v in chosen.items()}
        records.append(
            record_of(
                row,
                labels=chosen,
                caption=caption_of(spec, values, include_sensitive=include_sensitive),
                predictions=predicted.get(row.subject_id, {}),
            )
        )
    return records


def record_of(
    row: SubjectRow,
    *,
    labels: dict[str, LabelValue] | None = None,
    caption: str = "",
    predictions: dict[str, dict[str, tuple[Any, float]]] | None = None,
    document: LabelDocument | None = None,
) -> ExportRecord:
    """A subject's record: its labels, or the document kept for them."""
    key = sample_key(row.subject_id)
    return ExportRecord(
        key=key,
        subject_id=row.subject_id,
        image_name=f"{key}.{IMAGE_EXTENSIONS.get(row.mime, 'bin')}",
        row=row,
        labels=labels if labels is not None else {},
        predictions=predictions or {},
        caption=document.caption if document is not None else caption,
        storage_key=row.storage_key,
        parsing_mask_key=row.parsing_mask_key,
        document=document,
    )


def attribute_groups(spec: TaxonomySpec, record: ExportRecord) -> list[dict[str, Any] | None]:
    """CosmicMan's aa_text: per caption group after the shot phrase, attribute -> words, or null."""
    index = spec_index(spec)
    groups: dict[str, dict[str, Any]] = {}
    for key, label in record.labels.items():
        category = index.categories[key]
        group = category.group
        if group is None or group == SHOT_GROUP:
            continue
        attributes = groups.get(group)
        if attributes is None:
            attributes = groups[group] = {}
        attributes[category.key] = _words(category, label.value)
    return [groups.get(g.key) or None for g in index.groups]


def attribute_ids(spec: TaxonomySpec) -> list[list[int]]:
    return [list(ids) for ids in spec_index(spec).group_ids]


def _shot_label(record: ExportRecord) -> str | None:
    shot = record.labels.get("shot.type")
    return shot.value if shot is not None and isinstance(shot.value, str) else None


def person_type(record: ExportRecord) -> str | None:
    said = record.document.person_type if record.document is not None else _shot_label(record)
    return said if said is not None else record.row.shot_type


def aa_text(spec: TaxonomySpec, record: ExportRecord) -> str:
    if record.document is not None:
        return record.document.aa_text
    return json.dumps(attribute_groups(spec, record), ensure_ascii=False)


def label_states(record: ExportRecord) -> dict[str, int]:
    """How many labels the record says, by state."""
    if record.document is not None:
        return record.document.states
    counts: dict[str, int] = {}
    for label in record.labels.values():
        counts[label.state] = counts.get(label.state, 0) + 1
    return counts


def attributes_document(
    spec: TaxonomySpec, record: ExportRecord, snapshot: Mapping[str, Any]
) -> dict[str, Any]:
    """The WebDataset `.json` (and JSONL line), format 2:
    - `regions`: region -> category -> value, in taxonomy order;
    - `provenance`: one entry per way labels were decided (state, person or model, the last
      model version that spoke), in the order the labels first say it, each with its labels'
      full keys -> that model's confidence (null: none);
    - `groups`: caption group -> attribute -> caption words, for the groups the sample has, in
      taxonomy order (their nouns and parsing ids are the manifest's `groups`)."""
    index = spec_index(spec)
    regions: dict[str, dict[str, Any]] = {}
    provenance: dict[tuple[str, bool, str | None], dict[str, Any]] = {}
    for key, label in record.labels.items():
        category = index.categories[key]
        region = regions.get(category.region)
        if region is None:
            region = regions[category.region] = {}
        region[category.key] = label.value
        said = (label.state, label.decided_by_person, label.model_version)
        entry = provenance.get(said)
        if entry is None:
            entry = provenance[said] = _provenance(*said) | {"labels": {}}
        entry["labels"][key] = label.confidence
    groups = {
        group.key: attributes
        for group, attributes in zip(index.groups, attribute_groups(spec, record), strict=True)
        if attributes
    }
    return {
        **_head(record),
        "regions": regions,
        "provenance": list(provenance.values()),
        "groups": groups,
        "snapshot": dict(snapshot),
    }


def _provenance(state: str, decided_by_person: bool, model_version: str | None) -> dict[str, Any]:
    return {
        "state": state,
        "decided_by": "person" if decided_by_person else "model",
        "model_version": model_version,
    }


def caption_groups(spec: TaxonomySpec) -> list[dict[str, Any]]:
    """The manifest's `groups`: each caption group after the shot phrase, in taxonomy order, with
    its noun and parsing ids (what samples' `groups` leave out)."""
    index = spec_index(spec)
    return [
        {"group": group.key, "noun": group.noun, "parsing_ids": ids}
        for group, ids in zip(index.groups, index.group_ids, strict=True)
    ]


def _head(record: ExportRecord) -> dict[str, Any]:
    """The attributes document's members before its labels."""
    return {
        "key": record.key,
        "subject_id": record.subject_id,
        "caption": record.caption,
        "person_type": person_type(record),
        "image": record.image,
        "subject": record.subject,
    }


# `json.dumps(..., ensure_ascii=False, separators=(",", ":"))`, built once.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(document: Any) -> str:
    return _ENCODER.encode(document)


# `json.dumps(..., ensure_ascii=False)`, json's default separators: CosmicMan's aa_text is written so.
_aa_dumps = json.JSONEncoder(ensure_ascii=False).encode


_HEAD = (
    '{"key":"%s","subject_id":%d,"caption":%s,"person_type":%s,'
    '"image":{"id":%d,"sha256":%s,"width":%d,"height":%d,"mime":%s,"source_id":%s,"licence":%s,'
    '"consent":%s,"quality":%s},'
    '"subject":{"index":%d,"bbox":%s,"shot_type":%s,"detector_score":%s,"analyzer_version":%s}'
)


def head(record: ExportRecord) -> str:
    """`dumps(_head(record))` without its closing brace, written from the row: its JSON columns
    go in as the database holds their text (valid JSON, perhaps not compact), never decoded.
    Strings go through json's own string encoder, the rest through `dumps`."""
    row = record.row
    return _HEAD % (
        record.key,
        record.subject_id,
        _string(record.caption),
        _text(person_type(record)),
        row.image_id,
        _string(row.sha256),
        row.width,
        row.height,
        _string(row.mime),
        "null" if row.source_id is None else str(int(row.source_id)),
        _string(row.licence),
        _string(row.consent),
        _quality_text(row.quality),
        row.subject_index,
        "null" if row.bbox is None else row.bbox,
        _text(row.shot_type),
        _number(row.detector_score),
        _text(row.analyzer_version),
    )


# What `dumps` writes of a string (`ensure_ascii=False`), without its checks of the value's type.
_string = encode_basestring


def _text(value: str | None) -> str:
    return "null" if value is None else _string(value)


def _number(value: float | None) -> str:
    """What `dumps` writes of a number or None, without its encoder's set-up per call (a fifth
    of a sample head's time): a finite float is its repr, as json writes it."""
    if value is None:
        return "null"
    if value.__class__ is float and value - value == 0:
        return float.__repr__(value)
    return dumps(value)


class AttributesEncoder:
    """`dumps(attributes_document(spec, record, snapshot))`, written faster: a label's JSON
    depends on its category, value and provenance, which repeat across samples (a closed
    vocabulary, few states and models), so each distinct one is encoded once; only the
    confidence is written per label. Exports hold one per part."""

    def __init__(self, spec: TaxonomySpec, snapshot: Mapping[str, Any]) -> None:
        self.spec = spec
        self.index = spec_index(spec)
        self._tail = f',"snapshot":{dumps(dict(snapshot))}}}'.encode()
        self._labels: dict[tuple[object, ...], _Encoded] = {}
        self._groups = [(group.key, f"{dumps(group.key)}:{{") for group in self.index.groups]

    def encode(self, record: ExportRecord) -> bytes:
        """The document, UTF-8."""
        body = record.document.body if record.document is not None else self.body(record)
        return b"".join((head(record).encode(), b",", body, self._tail))

    def document(self, record: ExportRecord) -> LabelDocument:
        """The record's label-derived pieces, to keep for the next export."""
        body, groups = self._encoded_labels(record)
        return LabelDocument(
            states=label_states(record),
            person_type=_shot_label(record),
            caption=record.caption,
            aa_text=self._aa_text(groups),
            body=body,
        )

    def body(self, record: ExportRecord) -> bytes:
        """`"regions":{...},"provenance":[...],"groups":{...}` of the attributes document, UTF-8."""
        return self._encoded_labels(record)[0]

    def _aa_text(self, groups: Mapping[str, Mapping[str, tuple[str, str]]]) -> str:
        """`aa_text(spec, record)` from the groups `_encoded_labels` found: the same attributes
        and words, written with json's default separators."""
        return (
            "["
            + ", ".join(
                [
                    "{" + ", ".join([aa_words for _, aa_words in attributes.values()]) + "}"
                    if (attributes := groups.get(group_key))
                    else "null"
                    for group_key, _ in self._groups
                ]
            )
            + "]"
        )

    def _encoded_labels(self, record: ExportRecord) -> tuple[bytes, dict[str, dict[str, tuple[str, str]]]]:
        """The body, and per caption group its attributes' words as the body and as CosmicMan's
        aa_text write them."""
        known = self._labels
        if len(known) > _REMEMBERED_AT_MOST:  # free-text values would grow it without end
            known.clear()
        regions: dict[str, list[str]] = {}
        provenance: dict[str, list[str]] = {}
        groups: dict[str, dict[str, tuple[str, str]]] = {}
        for full_key, label in record.labels.items():
            value, state, by_person, model_version, confidence = label
            kind = value.__class__
            # The value's class is in the key: `True == 1`, but their JSON differs.
            hashable = value if kind in _SCALARS else _hashable(value)
            encoded: _Encoded | None = None
            if hashable is not _UNHASHABLE:
                key = (full_key, kind, hashable, state, by_person, model_version)
                encoded = known.get(key)
                if encoded is None:
                    encoded = known[key] = self._encoded(full_key, label)
            if encoded is None:
                encoded = self._encoded(full_key, label)
            region, said, source, name, group, attribute, words, aa_words = encoded
            # `x - x == 0` holds for finite floats only: NaN and infinities go through json.
            number = (
                float.__repr__(confidence)
                if confidence.__class__ is float and confidence - confidence == 0
                else dumps(confidence)
            )
            values = regions.get(region)
            if values is None:
                values = regions[region] = []
            values.append(said)
            confidences = provenance.get(source)
            if confidences is None:
                confidences = provenance[source] = []
            confidences.append(name + number)
            if words is not None:
                attributes = groups.get(group)
                if attributes is None:
                    attributes = groups[group] = {}
                attributes[attribute] = (words, aa_words)  # a later category of the same key wins, in place
        out = ['"regions":{']
        out.append(",".join([region + ",".join(values) + "}" for region, values in regions.items()]))
        out.append('},"provenance":[')
        out.append(",".join([source + ",".join(said) + "}}" for source, said in provenance.items()]))
        out.append('],"groups":{')
        out.append(
            ",".join(
                [
                    opening + ",".join([words for words, _ in attributes.values()]) + "}"
                    for group_key, opening in self._groups
                    if (attributes := groups.get(group_key))
                ]
            )
        )
        out.append("}")
        return "".join(out).encode(), groups

    def _encoded(self, full_key: str, label: LabelValue) -> _Encoded:
        category = self.index.categories[full_key]
        name = dumps(category.key)
        source = dumps(_provenance(label.state, label.decided_by_person, label.model_version))
        in_group = category.group is not None and category.group != SHOT_GROUP
        words = _words(category, label.value) if in_group else None
        return _Encoded(
            region=dumps(category.region) + ":{",
            said=f"{name}:{dumps(label.value)}",
            source=source[:-1] + ',"labels":{',
            name=dumps(full_key) + ":",
            group=category.group or "",
            attribute=category.key,
            words=f"{name}:{dumps(words)}" if in_group else None,
            aa_words=f"{_aa_dumps(category.key)}: {_aa_dumps(words)}" if in_group else "",
        )


class _Encoded(NamedTuple):
    """One label's JSON pieces, but its confidence."""

    region: str  # `"region":{`
    said: str  # `"key":value` in its region
    source: str  # `{"state":...,"decided_by":...,"model_version":...,"labels":{` in provenance
    name: str  # `"region.key":`, before its confidence in its provenance's labels
    group: str  # its caption group, when `words` is said there
    attribute: str
    words: str | None  # `"key":words` in its group's attributes
    aa_words: str  # `"key": words` in its group of CosmicMan's aa_text (json's default separators)


_UNHASHABLE = object()
# The distinct labels an encoder keeps encoded; past this it starts again.
_REMEMBERED_AT_MOST = 100_000
_SCALARS = frozenset({str, bool, int, float, type(None)})


def _hashable(value: Any) -> object:
    """A key for `value` that tells `True` from `1` (their JSON differs), or _UNHASHABLE."""
    key = (list, *((v.__class__, v) for v in value)) if isinstance(value, list) else (value.__class__, value)
    try:
        hash(key)
    except TypeError:
        return _UNHASHABLE
    return key

"""Dense captions from labels, after CosmicMan: the shot phrase first, then each caption group in
taxonomy order as its attribute values followed by its noun, joined with ", ".

A group is said only when something in it was decided: a noun alone ("person") says nothing.

Trimming (`max_tokens`, CLIP's context of 77 with its start and end tokens): the caption is a
list of parts (each shot phrase, then each group's "values noun" text) joined with ", "; the
longest leading run of whole parts whose joined text fits is kept, so trailing groups are dropped
first, a part is never cut inside, and a part that does not fit ends the caption even when a
shorter one after it would fit (CosmicMan's rule: drop trailing groups). Tokens are counted with
CLIP's own tokenizer (server.captions.tokens).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from server.captions.tokens import CONTEXT_LENGTH, context_tokens
from server.taxonomy.format import TaxonomySpec

SEPARATOR = ", "


@dataclass(frozen=True)
class Caption:
    text: str
    tokens: int  # CLIP context tokens of `text`, start and end included
    trimmed: bool  # whether trailing parts were dropped to fit
    parts: tuple[str, ...]  # what `text` says, part by part


@dataclass(frozen=True)
class _Said:
    """What the composer needs of one captioned category, read once per taxonomy."""

    full_key: str
    kind: str
    role: str
    group: str
    order: int
    sensitive: bool
    captions: Mapping[str, str]  # value key -> its caption


@dataclass(frozen=True)
class _Plan:
    said: tuple[_Said, ...]
    groups: tuple[tuple[str, str], ...]  # (group key, default noun), in caption order


_plans: dict[int, tuple[TaxonomySpec, _Plan]] = {}


def _plan(spec: TaxonomySpec) -> _Plan:
    # Specs are frozen; keeping the spec beside its plan keeps its id from being reused.
    cached = _plans.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    said = tuple(
        _Said(
            full_key=c.full_key,
            kind=c.kind,
            role=c.caption.role,
            group=c.caption.group,
            order=c.caption.order,
            sensitive=c.sensitive,
            captions={v.key: v.caption for v in c.values},
        )
        for c in spec.categories()
        if c.caption.role != "none" and c.caption.group is not None
    )
    plan = _Plan(said=said, groups=tuple((g.key, g.noun) for g in spec.caption_groups))
    if len(_plans) >= 64:
        _plans.clear()
    _plans[id(spec)] = (spec, plan)
    return plan


def _text(category: _Said, value: Any) -> str:
    if value is None:
        return ""
    if category.kind == "text":
        return str(value).strip()
    keys = value if isinstance(value, list) else [value]
    words = []
    for key in keys:
        lookup = ("true" if key else "false") if isinstance(key, bool) else str(key)
        word = category.captions.get(lookup)
        if word:
            words.append(word)
    if len(words) > 2:
        return ", ".join(words[:-1]) + " and " + words[-1]
    return " and ".join(words)


def compose(
    spec: TaxonomySpec,
    values: Mapping[str, Any],
    *,
    include_sensitive: bool = False,
    max_tokens: int | None = None,
) -> str:
    """`values`: category full key -> label value. Categories whose `when` fails are ignored.
    `max_tokens`: trim to this many CLIP context tokens (77 for CLIP), see the module's rule."""
    parts = caption_parts(spec, values, include_sensitive=include_sensitive)
    if max_tokens is None:
        return SEPARATOR.join(parts)
    return trim(parts, max_tokens).text


def caption_of(
    spec: TaxonomySpec,
    values: Mapping[str, Any],
    *,
    include_sensitive: bool = False,
    max_tokens: int | None = CONTEXT_LENGTH,
) -> Caption:
    """The caption with its token count and whether it was trimmed (default: to CLIP's 77)."""
    parts = caption_parts(spec, values, include_sensitive=include_sensitive)
    if max_tokens is None:
        text = SEPARATOR.join(parts)
        return Caption(text=text, tokens=context_tokens(text), trimmed=False, parts=tuple(parts))
    return trim(parts, max_tokens)


def trim(parts: Sequence[str], max_tokens: int) -> Caption:
    """The longest leading run of whole `parts` that fits in `max_tokens` context tokens."""
    if max_tokens < 2:
        raise ValueError("a CLIP context holds at least its start and end tokens")
    for keep in range(len(parts), -1, -1):
        text = SEPARATOR.join(parts[:keep])
        tokens = context_tokens(text)
        if tokens <= max_tokens:
            return Caption(text=text, tokens=tokens, trimmed=keep < len(parts), parts=tuple(parts[:keep]))
    raise AssertionError("unreachable: the empty caption is 2 tokens")


def caption_parts(
    spec: TaxonomySpec, values: Mapping[str, Any], *, include_sensitive: bool = False
) -> list[str]:
    """Each phrase and group text of the caption, in caption order."""
    applicable = {c.full_key for c in spec.applicable_categories(values)}
    plan = _plan(spec)
    parts: dict[str, list[tuple[int, str]]] = defaultdict(list)
    nouns: dict[str, str] = {}
    phrases: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for category in plan.said:
        if category.full_key not in applicable or (category.sensitive and not include_sensitive):
            continue
        text = _text(category, values.get(category.full_key))
        if not text:
            continue
        if category.role == "noun":
            nouns[category.group] = text
        elif category.role == "phrase":
            phrases[category.group].append((category.order, text))
        else:
            parts[category.group].append((category.order, text))
    out: list[str] = []
    for key, default_noun in plan.groups:
        said = [t for _, t in sorted(phrases[key])]
        attributes = [t for _, t in sorted(parts[key])]
        noun = nouns.get(key, default_noun)
        if attributes or key in nouns:
            said.append(" ".join([*attributes, noun]).strip())
        out.extend(s for s in said if s)
    return out

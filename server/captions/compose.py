"""Dense captions from labels, after CosmicMan: the shot phrase first, then each caption group in
taxonomy order as its attribute values followed by its noun, joined with ", ".

A group is said only when something in it was decided: a noun alone ("person") says nothing.

Trimming (`max_tokens`, CLIP's context of 77 with its start and end tokens): the caption is a
list of parts (each shot phrase, then each group's "values noun" text) joined with ", "; the
longest leading run of whole parts whose joined text fits is kept, so trailing groups are dropped
first, a part is never cut inside, and a part that does not fit ends the caption even when a
shorter one after it would fit (CosmicMan's rule: drop trailing groups). Tokens are counted with
CLIP's own tokenizer (server.captions.tokens).

Exports caption every sample, and labels repeat: applicability and whole captions are kept per
taxonomy, keyed by the values they read, and parts are counted once each (`trim`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from server.captions.tokens import CONTEXT_LENGTH, context_tokens, count_tokens, plain_text
from server.taxonomy.format import TaxonomySpec

SEPARATOR = ", "
# Memo sizes per taxonomy: past these, a memo starts again (distinct label sets are bounded by
# the taxonomy, so this is rare).
_MEMO_LIMIT = 1 << 16


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


class _Plan:
    """A taxonomy's caption layout, with what was composed from it so far."""

    def __init__(self, spec: TaxonomySpec) -> None:
        self.spec = spec
        self.said = tuple(
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
        self.groups = tuple((g.key, g.noun) for g in spec.caption_groups)
        referenced: set[str] = set()
        for category in spec.categories():
            if category.when is not None:
                referenced |= category.when.referenced_categories()
        # Applicability depends only on the values conditions read; a caption on those and
        # the values it says.
        self.referenced = tuple(sorted(referenced))
        said_keys = {c.full_key for c in self.said}
        self.relevant = (*self.referenced, *sorted(said_keys - referenced))
        self._applicable: dict[tuple[object, ...], frozenset[str]] = {}
        self._captions: dict[tuple[object, ...], Caption] = {}

    def applicable(self, values: Mapping[str, Any]) -> frozenset[str]:
        """`spec.applicable_categories(values)` as full keys."""
        key = memo_key(values, self.referenced)
        known = self._applicable.get(key) if key is not None else None
        if known is None:
            known = frozenset(c.full_key for c in self.spec.applicable_categories(values))
            if key is not None:
                if len(self._applicable) >= _MEMO_LIMIT:
                    self._applicable.clear()
                self._applicable[key] = known
        return known

    def caption(self, values: Mapping[str, Any], include_sensitive: bool, max_tokens: int) -> Caption:
        key = memo_key(values, self.relevant)
        if key is None:
            return trim(_parts(self, values, include_sensitive), max_tokens)
        key = (include_sensitive, max_tokens, *key)
        known = self._captions.get(key)
        if known is None:
            known = trim(_parts(self, values, include_sensitive), max_tokens)
            if len(self._captions) >= _MEMO_LIMIT:
                self._captions.clear()
            self._captions[key] = known
        return known


def memo_key(values: Mapping[str, Any], keys: Sequence[str]) -> tuple[object, ...] | None:
    """The values at `keys` as a hashable key that tells `True` from `1` (the composer does);
    None when a value cannot be a key."""
    raw = tuple(map(values.get, keys))
    if not _PLAIN.issuperset(map(type, raw)):
        raw = tuple(v if v.__class__ in _PLAIN else _tagged(v) for v in raw)
        try:
            hash(raw)
        except TypeError:
            return None
    return raw


# Values that are their own key: a bool is never equal to a str or None.
_PLAIN = frozenset({str, bool, type(None)})


def _tagged(value: Any) -> object:
    if isinstance(value, list):
        return (list, *(v if v.__class__ in _PLAIN else _tagged(v) for v in value))
    return (value.__class__, value)


_plans: dict[int, _Plan] = {}


def _plan(spec: TaxonomySpec) -> _Plan:
    # Specs are frozen; the plan holds its spec, so the spec's id is not reused while cached.
    cached = _plans.get(id(spec))
    if cached is not None and cached.spec is spec:
        return cached
    plan = _Plan(spec)
    if len(_plans) >= 64:
        _plans.clear()
    _plans[id(spec)] = plan
    return plan


def applicable_keys(spec: TaxonomySpec, values: Mapping[str, Any]) -> frozenset[str]:
    """The full keys of `spec.applicable_categories(values)`, remembered per taxonomy."""
    return _plan(spec).applicable(values)


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
    if max_tokens is None:
        return SEPARATOR.join(caption_parts(spec, values, include_sensitive=include_sensitive))
    return _plan(spec).caption(values, include_sensitive, max_tokens).text


def caption_of(
    spec: TaxonomySpec,
    values: Mapping[str, Any],
    *,
    include_sensitive: bool = False,
    max_tokens: int | None = CONTEXT_LENGTH,
) -> Caption:
    """The caption with its token count and whether it was trimmed (default: to CLIP's 77)."""
    if max_tokens is None:
        parts = caption_parts(spec, values, include_sensitive=include_sensitive)
        text = SEPARATOR.join(parts)
        return Caption(text=text, tokens=context_tokens(text), trimmed=False, parts=tuple(parts))
    return _plan(spec).caption(values, include_sensitive, max_tokens)


def trim(parts: Sequence[str], max_tokens: int) -> Caption:
    """The longest leading run of whole `parts` that fits in `max_tokens` context tokens."""
    if max_tokens < 2:
        raise ValueError("a CLIP context holds at least its start and end tokens")
    counts = _separable_counts(parts)
    if counts is not None:
        tokens, keep = 2, 0
        for count in counts:
            more = count + (_separator_tokens() if keep else 0)
            if tokens + more > max_tokens:
                break
            tokens, keep = tokens + more, keep + 1
        text = SEPARATOR.join(parts[:keep])
        return Caption(text=text, tokens=tokens, trimmed=keep < len(parts), parts=tuple(parts[:keep]))
    for keep in range(len(parts), -1, -1):
        text = SEPARATOR.join(parts[:keep])
        tokens = context_tokens(text)
        if tokens <= max_tokens:
            return Caption(text=text, tokens=tokens, trimmed=keep < len(parts), parts=tuple(parts[:keep]))
    raise AssertionError("unreachable: the empty caption is 2 tokens")


@lru_cache(maxsize=1)
def _separator_tokens() -> int:
    return count_tokens(SEPARATOR.strip())


@lru_cache(maxsize=1 << 16)
def _part_tokens(part: str) -> int:
    return count_tokens(part)


def _separable_counts(parts: Sequence[str]) -> list[int] | None:
    """Each part's own token count, when the joined text's count is their sum plus one token per
    separator; else None (then the joined text is counted as a whole).

    That holds when cleaning changes no part across a join (printable ASCII without entities,
    nothing to strip: cleaning is then collapsing whitespace and lower-casing, part by part) and
    no tokenizer piece spans a separator: every part followed by one ends in a letter or digit,
    so the comma is a piece of its own and the space after it ends it.
    """
    for n, part in enumerate(parts):
        if not plain_text(part) or part != part.strip():
            return None
        if n < len(parts) - 1 and not part[-1:].isalnum():
            return None
    return [_part_tokens(part) for part in parts]


def caption_parts(
    spec: TaxonomySpec, values: Mapping[str, Any], *, include_sensitive: bool = False
) -> list[str]:
    """Each phrase and group text of the caption, in caption order."""
    return _parts(_plan(spec), values, include_sensitive)


def _parts(plan: _Plan, values: Mapping[str, Any], include_sensitive: bool) -> list[str]:
    applicable = plan.applicable(values)
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

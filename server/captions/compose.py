"""Dense captions from labels, after CosmicMan: the shot phrase first, then each caption group in
taxonomy order as its attribute values followed by its noun, joined with ", ".

A group is said only when something in it was decided: a noun alone ("person") says nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from server.taxonomy.format import CategorySpec, TaxonomySpec


def _text(category: CategorySpec, value: Any) -> str:
    if value is None:
        return ""
    if category.kind == "text":
        return str(value).strip()
    keys = value if isinstance(value, list) else [value]
    words = []
    for key in keys:
        lookup = ("true" if key else "false") if isinstance(key, bool) else str(key)
        try:
            words.append(category.value(lookup).caption)
        except KeyError:
            continue
    words = [w for w in words if w]
    if len(words) > 2:
        return ", ".join(words[:-1]) + " and " + words[-1]
    return " and ".join(words)


def compose(spec: TaxonomySpec, values: Mapping[str, Any], *, include_sensitive: bool = False) -> str:
    """`values`: category full key -> label value. Categories whose `when` fails are ignored."""
    applicable = {c.full_key for c in spec.applicable_categories(values)}
    parts: dict[str, list[tuple[int, str]]] = defaultdict(list)
    nouns: dict[str, str] = {}
    phrases: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for category in spec.categories():
        role, group = category.caption.role, category.caption.group
        if role == "none" or group is None or category.full_key not in applicable:
            continue
        if category.sensitive and not include_sensitive:
            continue
        text = _text(category, values.get(category.full_key))
        if not text:
            continue
        if role == "noun":
            nouns[group] = text
        elif role == "phrase":
            phrases[group].append((category.caption.order, text))
        else:
            parts[group].append((category.caption.order, text))
    out: list[str] = []
    for caption_group in spec.caption_groups:
        key = caption_group.key
        said = [t for _, t in sorted(phrases[key])]
        attributes = [t for _, t in sorted(parts[key])]
        noun = nouns.get(key, caption_group.noun)
        if attributes or key in nouns:
            said.append(" ".join([*attributes, noun]).strip())
        out.extend(s for s in said if s)
    return ", ".join(out)

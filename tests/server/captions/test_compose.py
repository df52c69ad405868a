from __future__ import annotations

from server.captions.compose import caption_of, caption_parts, compose
from server.captions.tokens import CONTEXT_LENGTH, context_tokens
from server.taxonomy.format import TaxonomySpec, load_default


def test_the_shot_comes_first_then_groups_in_order_each_with_its_noun() -> None:
    caption = compose(
        load_default(),
        {
            "shot.type": "full_body",
            "hair.color": "blonde",
            "hair.length": "above_chin",
            "top.type": "hoodie",
            "top.color": "red",
            "top.sleeve_length": "long",
            "background.type": "park",
        },
    )
    assert caption.startswith("a full-body shot, ")
    assert caption.index("a park") < caption.index("blonde above chin hair") < caption.index("red hoodie")


def test_what_does_not_apply_and_sensitive_values_are_not_said() -> None:
    spec = load_default()
    bald = compose(spec, {"shot.type": "headshot", "hair.length": "bald", "hair.style": "straight"})
    assert "straight" not in bald
    gender_key = next(c.full_key for c in spec.categories() if c.sensitive and c.kind == "single")
    value = spec.category(gender_key).values[0].key
    assert compose(spec, {gender_key: value}) == ""
    assert compose(spec, {gender_key: value}, include_sensitive=True) != ""


def test_several_values_of_a_multi_category_read_as_a_list() -> None:
    caption = compose(load_default(), {"accessory.items": ["earrings", "necklace", "bracelet"]})
    assert "earrings, a necklace and a bracelet" in caption


def _everything(spec: TaxonomySpec) -> dict[str, object]:
    """A value for every category (the last one, lists of three): far past CLIP's 77 tokens."""
    values: dict[str, object] = {}
    for category in spec.categories():
        keys = [v.key for v in category.values if v.caption]
        if category.kind == "boolean":
            values[category.full_key] = True
        elif keys:
            values[category.full_key] = keys[-3:] if category.kind == "multi" else keys[-1]
    return values


def test_trimming_keeps_the_longest_run_of_whole_leading_parts_that_fits() -> None:
    spec = load_default()
    values = _everything(spec)
    parts = caption_parts(spec, values, include_sensitive=True)
    full = compose(spec, values, include_sensitive=True)
    assert context_tokens(full) > CONTEXT_LENGTH
    trimmed = caption_of(spec, values, include_sensitive=True)
    assert trimmed.trimmed and trimmed.tokens == context_tokens(trimmed.text) <= CONTEXT_LENGTH
    kept = len(trimmed.parts)
    assert 0 < kept < len(parts) and list(trimmed.parts) == parts[:kept]
    # whole parts only: the trimmed text is a prefix of the full one ending where a part ends
    assert full.startswith(trimmed.text + ", ")
    # and one more part would not have fitted
    assert context_tokens(", ".join(parts[: kept + 1])) > CONTEXT_LENGTH
    assert compose(spec, values, include_sensitive=True, max_tokens=CONTEXT_LENGTH) == trimmed.text
    assert trimmed.parts[0] == spec.category("shot.type").values[-1].caption  # the shot comes first


def test_a_caption_that_fits_is_not_trimmed_and_smaller_budgets_drop_more() -> None:
    spec = load_default()
    short = {"shot.type": "headshot", "hair.color": "blonde"}
    assert caption_of(spec, short) == caption_of(spec, short, max_tokens=None)
    assert not caption_of(spec, short).trimmed
    values = _everything(spec)
    sizes = [len(caption_of(spec, values, max_tokens=n).parts) for n in (77, 40, 20, 2)]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == 0
    assert caption_of(spec, values, max_tokens=2).text == ""


def test_composition_is_deterministic_whatever_the_order_values_arrive_in() -> None:
    spec = load_default()
    values = _everything(spec)
    reversed_values = dict(reversed(list(values.items())))
    assert compose(spec, values, max_tokens=77) == compose(spec, reversed_values, max_tokens=77)


def _slow_trim(parts: list[str], max_tokens: int) -> tuple[str, int]:
    """The rule as written: the longest leading run whose joined text fits, counted whole."""
    for keep in range(len(parts), -1, -1):
        text = ", ".join(parts[:keep])
        if context_tokens(text) <= max_tokens:
            return text, context_tokens(text)
    raise AssertionError


def test_trimming_by_part_counts_gives_what_counting_the_joined_text_gives() -> None:
    import random

    from server.captions.compose import trim

    rng = random.Random(3)
    spec = load_default()
    words = [v.caption for c in spec.categories() for v in c.values if v.caption]
    odd = ["t-shirt.", "it's", "a 3-piece suit", "café", "x &amp; y", "  padded ", "ok!", "ab'", "9"]
    for _ in range(400):
        parts = [rng.choice(words + odd) for _ in range(rng.randint(0, 12))]
        budget = rng.choice([2, 5, 20, 40, 77])
        caption = trim(parts, budget)
        assert (caption.text, caption.tokens) == _slow_trim(parts, budget)
        assert caption.trimmed == (len(caption.parts) < len(parts))


def test_remembered_captions_tell_true_from_one() -> None:
    spec = load_default()
    boolean = next(c for c in spec.categories() if c.kind == "boolean" and c.when is None and c.caption.group)
    said = compose(spec, {boolean.full_key: True}, max_tokens=CONTEXT_LENGTH)
    assert said == compose(spec, {boolean.full_key: True})
    assert compose(spec, {boolean.full_key: 1}, max_tokens=CONTEXT_LENGTH) == compose(
        spec, {boolean.full_key: 1}
    )
    assert compose(spec, {boolean.full_key: [True]}, max_tokens=CONTEXT_LENGTH) == compose(
        spec, {boolean.full_key: [True]}
    )

from __future__ import annotations

from server.captions.compose import compose
from server.taxonomy.format import load_default


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

"""The taxonomy format: loading, error reporting, hashing, applicability, and the shipped default."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from server.taxonomy.format import (
    PARSING_LABELS,
    TaxonomySpec,
    TaxonomyValidationError,
    UnknownTaxonomyError,
    default_names,
    load_default,
    load_taxonomy,
)

COLORS = {
    "black",
    "white",
    "gray",
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "brown",
    "beige",
}

# What the synthetic-image generator renders and emits as ground truth: these keys must not change.
GENERATOR_CATEGORIES: dict[str, set[str]] = {
    "shot.type": {"full_body", "nearly_full_body", "upper_body", "portrait", "headshot"},
    "hair.color": {"black", "brown", "blonde", "red", "gray", "white"},
    "hair.length": {"bald", "above_eyes", "above_chin", "above_shoulders", "above_chest", "below_chest"},
    "hat.type": {"none", "baseball_cap", "beanie", "brimmed_hat"},
    "eyewear.type": {"none", "glasses", "sunglasses"},
    "top.type": {"t_shirt", "shirt", "tank_top", "hoodie", "sweater"},
    "top.color": COLORS,
    "top.sleeve_length": {"sleeveless", "short", "long"},
    "bottoms.type": {"trousers", "jeans", "shorts", "skirt"},
    "bottoms.color": COLORS,
    "bottoms.length": {"short", "knee_length", "full_length"},
    "shoes.color": COLORS,
    "bag.type": {"none", "handbag", "backpack"},
    "background.type": {"plain_wall", "park", "street", "beach", "indoor_room"},
}

REGION_PARSING_IDS = {
    "shot": set(range(1, 18)),
    "hat": {1},
    "eyewear": {3},
    "top": {4, 14, 15},
    "bottoms": {5, 6, 12, 13},
    "shoes": {9, 10},
    "bag": {16},
    "background": {0},
}

COSMICMAN_GROUPS = [
    "identity", "body_shape", "background", "hair", "one_piece", "dress", "top", "coat", "bottoms",
    "shoes", "hat", "accessory", "belt", "scarf", "style", "headband", "headscarf", "veil", "socks", "tie",
]  # fmt: skip


def value(key: str, **extra: Any) -> dict[str, Any]:
    return {"key": key, "prompts": [f"a photo of {key}"], **extra}


def category(key: str, kind: str = "single", **extra: Any) -> dict[str, Any]:
    closed = {"values": [value("red"), value("blue")]} if kind in ("single", "multi") else {}
    return {"key": key, "question": f"{key}?", "kind": kind, **closed, **extra}


def small_taxonomy() -> dict[str, Any]:
    """A valid taxonomy: a coat with presence, type and color, and a hat."""
    return {
        "name": "small",
        "description": "a test taxonomy",
        "caption_groups": [
            {"key": "coat", "noun": "coat", "parsing_ids": [4]},
            {"key": "hat", "noun": "hat"},
        ],
        "regions": [
            {
                "key": "coat",
                "name": "Coat",
                "parsing_ids": [4, 14, 15],
                "categories": [
                    category("worn", "boolean"),
                    category("color", when={"category": "coat.worn", "equals": True}),
                    category("length", when={"category": "coat.color", "in": ["red"]}),
                ],
            },
            {"key": "hat", "name": "Hat", "parsing_ids": [1], "categories": [category("color")]},
        ],
    }


def errors_of(document: dict[str, Any] | str) -> dict[str, str]:
    text = document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False)
    with pytest.raises(TaxonomyValidationError) as caught:
        load_taxonomy(text)
    return {error.path: error.message for error in caught.value.errors}


def mutated(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    document = small_taxonomy()
    change(document)
    return document


def coat(document: dict[str, Any], index: int) -> dict[str, Any]:
    category_: dict[str, Any] = document["regions"][0]["categories"][index]
    return category_


# The shipped default


def test_default_has_at_least_50_categories_over_15_regions() -> None:
    spec = load_default()
    assert spec.name == "human-v1"
    assert len(spec.categories()) >= 50
    assert len(spec.regions) >= 15


def test_every_default_region_maps_to_atr_parsing_ids() -> None:
    for region in load_default().regions:
        assert region.parsing_ids, region.key
        assert all(0 <= i < len(PARSING_LABELS) for i in region.parsing_ids)


@pytest.mark.parametrize("full_key", sorted(GENERATOR_CATEGORIES))
def test_default_has_the_generator_categories_with_their_values(full_key: str) -> None:
    found = load_default().category(full_key)
    assert found.full_key == full_key
    assert GENERATOR_CATEGORIES[full_key] <= {v.key for v in found.values}


@pytest.mark.parametrize("region_key", sorted(REGION_PARSING_IDS))
def test_default_generator_regions_cover_their_parsing_ids(region_key: str) -> None:
    spec = load_default()
    region = next(r for r in spec.regions if r.key == region_key)
    assert REGION_PARSING_IDS[region_key] <= set(region.parsing_ids)


def test_default_caption_groups_are_the_shot_then_cosmicman_order() -> None:
    assert [g.key for g in load_default().caption_groups] == ["shot", *COSMICMAN_GROUPS]


def test_default_captions_open_with_the_shot_phrase() -> None:
    spec = load_default()
    shot = spec.category("shot.type")
    assert shot.caption.group == spec.caption_groups[0].key
    assert shot.caption.role == "phrase"
    assert shot.value("full_body").caption == "a full-body shot"
    earlier = [
        c for c in spec.categories() if c.caption.group == "shot" and c.caption.order < shot.caption.order
    ]
    assert earlier == []


def test_default_marks_gender_and_ethnicity_sensitive_and_nothing_depends_on_them() -> None:
    spec = load_default()
    sensitive = {c.full_key for c in spec.categories() if c.sensitive}
    assert {"identity.gender", "identity.ethnicity"} <= sensitive
    for c in spec.categories():
        assert not (c.when and c.when.referenced_categories() & sensitive), c.full_key


def test_default_garment_details_have_presence_conditions() -> None:
    spec = load_default()
    assert spec.category("coat.color").when is not None
    assert "coat.worn" in spec.category("coat.color").when.referenced_categories()  # type: ignore[union-attr]
    assert "hat.type" in spec.category("hat.color").when.referenced_categories()  # type: ignore[union-attr]


def test_unknown_default_name_raises() -> None:
    assert "human-v1" in default_names()
    with pytest.raises(UnknownTaxonomyError):
        load_default("../format")


# Content hash


def test_content_hash_ignores_yaml_layout_and_spelled_out_defaults() -> None:
    document = small_taxonomy()
    reference = load_taxonomy(yaml.safe_dump(document, sort_keys=False)).content_hash()

    explicit = copy.deepcopy(document)
    color = coat(explicit, 1)
    color.update(trust_threshold=0.85, sensitive=False, caption={"role": "none", "order": 0})
    color["values"][0].update(label="red", caption="red")
    flow = yaml.safe_dump(explicit, default_flow_style=True, sort_keys=True)

    assert load_taxonomy(flow).content_hash() == reference
    assert load_taxonomy(json.dumps(document, indent=4)).content_hash() == reference


def test_content_hash_changes_when_a_value_changes() -> None:
    document = small_taxonomy()
    before = load_taxonomy(yaml.safe_dump(document)).content_hash()
    coat(document, 1)["values"][0]["prompts"] = ["a photo of a crimson coat"]
    assert load_taxonomy(yaml.safe_dump(document)).content_hash() != before


def test_default_round_trips_through_its_dump_with_the_same_hash() -> None:
    spec = load_default()
    again = load_taxonomy(json.dumps(spec.model_dump(mode="json", exclude_none=True)))
    assert again == spec
    assert again.content_hash() == spec.content_hash()


# Errors at their paths


BAD_INPUTS: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    (
        "duplicate region key",
        lambda d: d["regions"][1].update(key="coat"),
        "regions[1].key",
        "duplicate region key",
    ),
    (
        "duplicate category key",
        lambda d: coat(d, 2).update(key="color", when=None),
        "regions[0].categories[2].key",
        "duplicate category key",
    ),
    (
        "duplicate value key",
        lambda d: coat(d, 1)["values"].append(value("red")),
        "regions[0].categories[1].values[2].key",
        "duplicate value key",
    ),
    (
        "unknown caption group",
        lambda d: coat(d, 1).update(caption={"group": "cape", "role": "attribute"}),
        "regions[0].categories[1].caption.group",
        "unknown caption group",
    ),
    (
        "captioned without a group",
        lambda d: coat(d, 1).update(caption={"role": "attribute"}),
        "regions[0].categories[1].caption.group",
        "needs a group",
    ),
    (
        "unknown when reference",
        lambda d: coat(d, 1).update(when={"category": "cape.worn", "equals": True}),
        "regions[0].categories[1].when.category",
        "unknown category",
    ),
    (
        "unknown when value",
        lambda d: coat(d, 2).update(when={"category": "coat.color", "in": ["red", "mauve"]}),
        "regions[0].categories[2].when.in[1]",
        "no value 'mauve'",
    ),
    (
        "boolean compared with a non-boolean",
        lambda d: coat(d, 1).update(when={"category": "coat.worn", "equals": "maybe"}),
        "regions[0].categories[1].when.equals",
        "no value 'maybe'",
    ),
    (
        "nested unknown reference",
        lambda d: coat(d, 1).update(
            when={
                "all": [{"category": "coat.worn", "equals": True}, {"category": "coat.cape", "equals": "x"}]
            }
        ),
        "regions[0].categories[1].when.all[1].category",
        "unknown category",
    ),
    (
        "self dependence",
        lambda d: coat(d, 1).update(when={"category": "coat.color", "not_in": ["red"]}),
        "regions[0].categories[1].when.category",
        "itself",
    ),
    (
        "condition on a sensitive category",
        lambda d: coat(d, 0).update(sensitive=True),
        "regions[0].categories[1].when.category",
        "sensitive",
    ),
    (
        "condition with two tests",
        lambda d: coat(d, 1).update(when={"category": "coat.worn", "equals": True, "not_in": [False]}),
        "regions[0].categories[1].when",
        "exactly one of",
    ),
    (
        "parsing id outside 0..17",
        lambda d: d["regions"][0].update(parsing_ids=[4, 18]),
        "regions[0].parsing_ids[1]",
        "less than or equal to 17",
    ),
    (
        "region without parsing ids",
        lambda d: d["regions"][1].update(parsing_ids=[]),
        "regions[1].parsing_ids",
        "at least one",
    ),
    (
        "single category without values",
        lambda d: coat(d, 1).update(values=[]),
        "regions[0].categories[1].values",
        "needs at least one value",
    ),
    (
        "values on a text category",
        lambda d: d["regions"][1]["categories"][0].update(kind="text"),
        "regions[1].categories[0].values",
        "text category",
    ),
    (
        "boolean with other values",
        lambda d: coat(d, 0).update(values=[value("true"), value("maybe")]),
        "regions[0].categories[0].values",
        "exactly `true` and `false`",
    ),
    (
        "threshold of zero",
        lambda d: coat(d, 1).update(trust_threshold=0),
        "regions[0].categories[1].trust_threshold",
        "greater than 0",
    ),
    (
        "threshold above one",
        lambda d: coat(d, 1).update(trust_threshold=1.5),
        "regions[0].categories[1].trust_threshold",
        "less than or equal to 1",
    ),
    (
        "closed value without prompts",
        lambda d: coat(d, 1)["values"][1].pop("prompts"),
        "regions[0].categories[1].values[1].prompts",
        "zero-shot prompt",
    ),
    (
        "unknown field",
        lambda d: d["regions"][0].update(colour="red"),
        "regions[0].colour",
        "unknown field",
    ),
    (
        "missing question",
        lambda d: coat(d, 1).pop("question"),
        "regions[0].categories[1].question",
        "required",
    ),
    (
        "key not snake_case",
        lambda d: coat(d, 1).update(key="Colour"),
        "regions[0].categories[1].key",
        "snake_case",
    ),
    (
        "name not a slug",
        lambda d: d.update(name="Human V1"),
        "name",
        "slug",
    ),
    (
        "unknown kind",
        lambda d: coat(d, 1).update(kind="rating"),
        "regions[0].categories[1].kind",
        "'single'",
    ),
    (
        "two nouns in one group",
        lambda d: d["regions"][0].update(
            categories=[
                category("worn", "boolean"),
                category("color", caption={"group": "coat", "role": "noun"}),
                category("type", caption={"group": "coat", "role": "noun"}),
            ]
        ),
        "regions[0].categories[2].caption.role",
        "already takes its noun from coat.color",
    ),
]


@pytest.mark.parametrize(
    ("change", "path", "fragment"), [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS]
)
def test_bad_input_is_reported_at_its_path(
    change: Callable[[dict[str, Any]], None], path: str, fragment: str
) -> None:
    errors = errors_of(mutated(change))
    assert path in errors, errors
    assert fragment in errors[path]


def test_structural_errors_across_the_document_are_reported_together() -> None:
    def break_several(d: dict[str, Any]) -> None:
        d["regions"][0]["parsing_ids"] = [99]
        coat(d, 1)["trust_threshold"] = 2
        coat(d, 2)["values"] = []
        d["regions"][1]["categories"][0]["kind"] = "text"

    assert set(errors_of(mutated(break_several))) == {
        "regions[0].parsing_ids[0]",
        "regions[0].categories[1].trust_threshold",
        "regions[0].categories[2].values",
        "regions[1].categories[0].values",
    }


def test_cross_reference_errors_are_reported_together() -> None:
    def break_references(d: dict[str, Any]) -> None:
        d["caption_groups"].append({"key": "hat"})
        coat(d, 0)["caption"] = {"group": "cape", "role": "none"}
        coat(d, 1)["when"] = {"category": "coat.worn", "equals": "sometimes"}
        d["regions"][1]["categories"][0]["when"] = {"category": "hat.brim", "equals": "wide"}

    assert set(errors_of(mutated(break_references))) == {
        "caption_groups[2].key",
        "regions[0].categories[0].caption.group",
        "regions[0].categories[1].when.equals",
        "regions[1].categories[0].when.category",
    }


def test_a_cycle_of_conditions_is_reported_once_with_its_members() -> None:
    def close_cycle(d: dict[str, Any]) -> None:
        coat(d, 0).update(when={"category": "coat.length", "in": ["blue"]})

    errors = errors_of(mutated(close_cycle))
    cycles = {path: message for path, message in errors.items() if "cycle" in message}
    assert len(cycles) == 1, errors
    (message,) = cycles.values()
    assert all(key in message for key in ("coat.worn", "coat.color", "coat.length"))
    assert next(iter(cycles)).endswith(".when")


def test_a_two_category_cycle_is_detected() -> None:
    def close_cycle(d: dict[str, Any]) -> None:
        coat(d, 0).update(
            kind="single",
            values=[value("yes"), value("no")],
            when={"category": "coat.color", "equals": "red"},
        )
        coat(d, 1).update(when={"category": "coat.worn", "equals": "yes"})

    assert any("cycle" in message for message in errors_of(mutated(close_cycle)).values())


def test_yaml_syntax_error_is_one_error_with_line_and_column() -> None:
    errors = errors_of("name: small\nregions: [\n  {key: coat\n")
    assert list(errors) == [""]
    assert "line" in errors[""] and "column" in errors[""]


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "", "42\n"])
def test_a_document_that_is_not_a_mapping_is_one_clear_error(text: str) -> None:
    errors = errors_of(text)
    assert list(errors) == [""]
    assert "must be a YAML mapping" in errors[""]


def test_a_repeated_yaml_key_is_an_error_not_a_silent_override() -> None:
    errors = errors_of("name: small\nname: other\n")
    assert "duplicate key 'name'" in errors[""]
    assert "line 2" in errors[""]


def test_yes_no_on_off_stay_strings_rather_than_booleans() -> None:
    words = ["yes", "no", "on", "off"]
    document = small_taxonomy()
    document["regions"][1]["categories"][0]["values"] = [value(word) for word in words]
    text = yaml.safe_dump(document)
    for word in words:
        text = text.replace(f"key: '{word}'", f"key: {word}")
    assert "key: no\n" in text
    assert [v.key for v in load_taxonomy(text).category("hat.color").values] == words


def test_bytes_are_accepted() -> None:
    assert load_taxonomy(yaml.safe_dump(small_taxonomy()).encode()).name == "small"


# Defaults filled in while loading


def test_label_and_caption_default_from_the_key() -> None:
    document = small_taxonomy()
    hat_values = [value("dark_red"), value("navy", label="navy blue"), value("tan", caption="")]
    document["regions"][1]["categories"][0]["values"] = hat_values
    values = load_taxonomy(yaml.safe_dump(document)).category("hat.color").values
    assert [(v.label, v.caption) for v in values] == [
        ("dark red", "dark red"),
        ("navy blue", "navy blue"),
        ("tan", ""),
    ]


def test_a_boolean_without_values_gets_true_and_false() -> None:
    worn = load_taxonomy(yaml.safe_dump(small_taxonomy())).category("coat.worn")
    assert [v.key for v in worn.values] == ["true", "false"]
    assert worn.trust_threshold == 0.85
    assert worn.sensitive is False


def test_category_lookup_by_full_key() -> None:
    spec = load_taxonomy(yaml.safe_dump(small_taxonomy()))
    assert [c.full_key for c in spec.categories()] == ["coat.worn", "coat.color", "coat.length", "hat.color"]
    assert spec.category("hat.color").key == "color"
    assert spec.region_of("coat.length").key == "coat"
    with pytest.raises(KeyError):
        spec.category("coat.cape")


def test_a_spec_is_immutable() -> None:
    spec = load_default()
    with pytest.raises(ValueError):
        spec.name = "other"  # type: ignore[misc]


# Applicability


def applicable(spec: TaxonomySpec, values: dict[str, object]) -> set[str]:
    return {c.full_key for c in spec.applicable_categories(values)}


def test_no_coat_color_without_a_coat() -> None:
    spec = load_default()
    assert "coat.color" not in applicable(spec, {"coat.worn": False})
    assert "coat.color" in applicable(spec, {"coat.worn": True})
    assert "coat.color" not in applicable(spec, {})


def test_no_shoes_or_bottoms_for_a_headshot() -> None:
    spec = load_default()
    for_headshot = applicable(spec, {"shot.type": "headshot", "bottoms.type": "jeans"})
    assert not {k for k in for_headshot if k.startswith(("shoes.", "bottoms."))}
    full_body = applicable(spec, {"shot.type": "full_body", "bottoms.type": "jeans"})
    assert {"shoes.color", "bottoms.type", "bottoms.color", "bottoms.length"} <= full_body


def test_a_category_depending_on_a_non_applicable_one_is_not_applicable() -> None:
    spec = load_taxonomy(yaml.safe_dump(small_taxonomy()))
    # coat.color has a (stale) value but no coat is worn, so its dependant coat.length is out too.
    assert applicable(spec, {"coat.worn": False, "coat.color": "red"}) == {"coat.worn", "hat.color"}
    assert applicable(spec, {"coat.worn": True, "coat.color": "red"}) == set(
        c.full_key for c in spec.categories()
    )


def test_applicable_categories_keep_document_order() -> None:
    spec = load_default()
    keys = [c.full_key for c in spec.applicable_categories({"shot.type": "full_body"})]
    order = [c.full_key for c in spec.categories()]
    assert keys == [k for k in order if k in keys]


def test_a_missing_value_makes_even_not_in_false() -> None:
    spec = load_default()
    condition = spec.category("hair.color").when
    assert condition is not None
    assert condition.evaluate({}) is False
    assert condition.evaluate({"hair.length": None}) is False
    assert condition.evaluate({"hair.length": "above_chin"}) is True
    assert condition.evaluate({"hair.length": "bald"}) is False


def test_a_multi_value_matches_when_any_chosen_key_is_listed() -> None:
    condition = load_default().category("accessory.material").when
    assert condition is not None
    assert condition.evaluate({"accessory.items": ["gloves", "watch"]}) is True
    assert condition.evaluate({"accessory.items": ["gloves"]}) is False
    assert condition.evaluate({"accessory.items": []}) is False


def test_boolean_conditions_accept_bools_and_their_key_strings() -> None:
    condition = load_default().category("coat.color").when
    assert condition is not None
    assert condition.evaluate({"coat.worn": True}) and condition.evaluate({"coat.worn": "true"})
    assert not condition.evaluate({"coat.worn": False})


def test_any_and_all_combine_conditions() -> None:
    document = small_taxonomy()
    coat(document, 2)["when"] = {
        "any": [
            {"category": "coat.color", "equals": "blue"},
            {
                "all": [
                    {"category": "coat.worn", "equals": True},
                    {"category": "hat.color", "not_in": ["red"]},
                ]
            },
        ]
    }
    spec = load_taxonomy(yaml.safe_dump(document))
    length = spec.category("coat.length")
    assert length.when is not None
    assert length.when.referenced_categories() == {"coat.color", "coat.worn", "hat.color"}
    base = {"coat.worn": True, "coat.color": "red"}
    assert "coat.length" in applicable(spec, {**base, "hat.color": "blue"})
    assert "coat.length" not in applicable(spec, {**base, "hat.color": "red"})
    assert "coat.length" in applicable(spec, {**base, "coat.color": "blue", "hat.color": "red"})


def test_a_document_parsed_again_shares_its_immutable_spec_and_a_bad_one_fails_each_time() -> None:
    from pydantic import ValidationError

    from server.taxonomy.service import default_yaml

    text = default_yaml("human-v1")
    spec = load_taxonomy(text)
    assert load_taxonomy(text) is spec  # every new project adds this document
    with pytest.raises(ValidationError):
        spec.name = "changed"  # type: ignore[misc]
    for _ in range(2):
        with pytest.raises(TaxonomyValidationError):
            load_taxonomy(text.replace("regions:", "regionz:", 1))

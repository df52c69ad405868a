from __future__ import annotations

from server.orm import Category, CategoryValue
from server.prelabel.categories import contract_categories, from_contract_value


def _category(key: str, kind: str, values: list[str], when: dict[str, object] | None = None) -> Category:
    return Category(
        key=key,
        kind=kind,
        question=f"{key}?",
        when=when,
        sensitive=False,
        values=[CategoryValue(key=v, label=v, prompts=[f"a photo of {v}"]) for v in values],
    )


def test_conditions_on_a_boolean_category_ask_the_wire_answer() -> None:
    worn = _category("coat.worn", "boolean", ["true", "false"])
    color = _category("coat.color", "single", ["red", "blue"], {"category": "coat.worn", "equals": "true"})
    specs = {s.key: s for s in contract_categories([worn, color], include_sensitive=False)}
    assert [v.key for v in specs["coat.worn"].values] == ["yes", "no"]
    condition = specs["coat.color"].when
    assert condition is not None
    assert condition.evaluate({"coat.worn": "yes"}) is True
    assert condition.evaluate({"coat.worn": True}) is True
    assert condition.evaluate({"coat.worn": "no"}) is False
    assert from_contract_value(worn, "yes") is True


def test_categories_that_depend_on_a_sensitive_one_are_left_out_with_it() -> None:
    gender = _category("identity.gender", "single", ["male", "female"])
    gender.sensitive = True
    beard = _category(
        "face.beard", "single", ["none", "full"], {"category": "identity.gender", "equals": "male"}
    )
    assert contract_categories([gender, beard], include_sensitive=False) == []
    assert len(contract_categories([gender, beard], include_sensitive=True)) == 2

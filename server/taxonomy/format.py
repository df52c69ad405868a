"""The taxonomy file format: what a project asks about each person, as validated pydantic models.

A taxonomy holds regions aligned with the 18 ATR human-parsing labels; each region holds
categories (one question each, such as ``top.sleeve_length``); closed categories hold values with
zero-shot prompts. Caption groups say how verified values become a CosmicMan-style caption.

A ``TaxonomySpec`` that exists is valid however it was built: structure, per-category rules and
cross-references are checked by the models themselves. ``load_taxonomy`` reports every problem it
finds, each at the path of the offending field (``regions[3].categories[1].values[0].key``).
Cross-reference checks (caption groups, ``when`` conditions, cycles) run once the rest is valid.

Exceptions::

    Exception
    ├── TaxonomyValidationError (ValueError)  the text is not a valid taxonomy; ``.errors``
    └── UnknownTaxonomyError (LookupError)    no shipped default taxonomy has that name
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictStr,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

# ATR human-parsing label set; the index is the label id in parsing masks and in aa_ids.
PARSING_LABELS: tuple[str, ...] = (
    "background", "hat", "hair", "sunglasses", "upper_clothes", "skirt", "pants", "dress", "belt",
    "left_shoe", "right_shoe", "face", "left_leg", "right_leg", "left_arm", "right_arm", "bag",
    "scarf",
)  # fmt: skip

CategoryKind = Literal["single", "multi", "boolean", "text"]
CaptionRole = Literal["attribute", "noun", "phrase", "none"]


def _bool_as_key(value: object) -> object:
    # YAML reads `key: true` and `equals: false` as booleans; boolean categories name them so.
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


_KEY_PATTERN = r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$"
_FULL_KEY_PATTERN = _KEY_PATTERN[:-1] + r"\." + _KEY_PATTERN[1:]
_SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
_PATTERN_MESSAGES = {
    _KEY_PATTERN: "must be snake_case (lowercase letters and digits, starting with a letter)",
    _FULL_KEY_PATTERN: "must be a full category key `<region>.<category>`, both snake_case",
    _SLUG_PATTERN: "must be a slug (lowercase letters, digits and single hyphens)",
}
Key = Annotated[StrictStr, StringConstraints(pattern=_KEY_PATTERN)]
FullKey = Annotated[StrictStr, StringConstraints(pattern=_FULL_KEY_PATTERN)]
Slug = Annotated[StrictStr, StringConstraints(pattern=_SLUG_PATTERN)]
Text = Annotated[StrictStr, StringConstraints(min_length=1)]
ParsingId = Annotated[int, Field(strict=True, ge=0, le=len(PARSING_LABELS) - 1)]


@dataclass(frozen=True)
class TaxonomyError:
    """One problem in a taxonomy document; ``path`` is ``""`` for the document as a whole."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<document>'}: {self.message}"


class TaxonomyValidationError(ValueError):
    """The text is not a valid taxonomy; ``errors`` lists every problem found."""

    def __init__(self, errors: list[TaxonomyError]) -> None:
        super().__init__("invalid taxonomy:\n" + "\n".join(f"  {e}" for e in errors))
        self.errors = errors


class UnknownTaxonomyError(LookupError):
    """No shipped default taxonomy has the requested name."""


Loc = tuple[str | int, ...]


class _ProblemsError(ValueError):
    """Semantic problems found by one model validator, each at a path relative to that model.

    Pydantic keeps the raised exception in the error's context, which lets ``load_taxonomy``
    report each problem at its own field instead of at the model that found it.
    """

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


class _Spec(BaseModel):
    # Revalidating instances gives each parent its own children, so a category's full key
    # (set by its region) is never shared between two regions.
    # Dumps use the YAML names (`in`, `all`, `any`), so any dump loads back as the same taxonomy.
    model_config = ConfigDict(
        extra="forbid", frozen=True, revalidate_instances="always", serialize_by_alias=True
    )


class ValueSpec(_Spec):
    """One answer of a closed category."""

    key: Key
    label: Text = ""  # defaults only stay empty when `key` is missing, which is reported
    prompts: tuple[Text, ...] = ()
    caption: StrictStr = ""  # "" means the caption says nothing for this value

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        # Resolved here, not on read, so that spelling a default out does not change the hash.
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "key" in data:
            data["key"] = _bool_as_key(data["key"])
        if "label" not in data and isinstance(data.get("key"), str):
            data["label"] = data["key"].replace("_", " ")
        if "caption" not in data and isinstance(data.get("label"), str):
            data["caption"] = data["label"]
        return data


class CaptionSpec(_Spec):
    """Where a category's value goes in the caption."""

    group: Key | None = None
    role: CaptionRole = "none"
    order: Annotated[int, Field(strict=True, ge=0)] = 0

    @model_validator(mode="after")
    def _group_when_captioned(self) -> CaptionSpec:
        if self.role != "none" and self.group is None:
            raise _ProblemsError([(("group",), f"a category with caption role {self.role!r} needs a group")])
        return self


ConditionValue = Annotated[StrictStr, BeforeValidator(_bool_as_key)]


class Condition(_Spec):
    """A ``when`` condition on other categories' values.

    One of: ``{category, equals}``, ``{category, in}``, ``{category, not_in}``, ``{all: [...]}``,
    ``{any: [...]}``. For a multi category, ``equals`` means "includes" and ``in`` means "includes
    any of". A missing or null referenced value makes a leaf False, ``not_in`` included.
    """

    category: FullKey | None = None
    equals: ConditionValue | None = None
    in_: tuple[ConditionValue, ...] | None = Field(default=None, alias="in")
    not_in: tuple[ConditionValue, ...] | None = None
    all_: tuple[Condition, ...] | None = Field(default=None, alias="all")
    any_: tuple[Condition, ...] | None = Field(default=None, alias="any")

    @model_validator(mode="after")
    def _one_form(self) -> Condition:
        lists = {"in": self.in_, "not_in": self.not_in, "all": self.all_, "any": self.any_}
        if empty := _empty_lists(lists):
            raise _ProblemsError(empty)
        tests = [v for v in (self.equals, self.in_, self.not_in) if v is not None]
        combinators = [v for v in (self.all_, self.any_) if v is not None]
        if self.category is not None and (combinators or len(tests) != 1):
            raise ValueError("a condition on `category` needs exactly one of `equals`, `in`, `not_in`")
        if self.category is None and (tests or len(combinators) != 1):
            raise ValueError(
                "a condition needs `category` with `equals`/`in`/`not_in`, or one of `all`/`any`"
            )
        return self

    def evaluate(self, values: Mapping[str, object]) -> bool:
        """Whether the condition holds for ``values`` (full key -> value key, bool or list)."""
        if self.all_ is not None:
            return all(c.evaluate(values) for c in self.all_)
        if self.any_ is not None:
            return any(c.evaluate(values) for c in self.any_)
        chosen = _chosen_keys(values.get(self.category or ""))
        if chosen is None:
            return False
        if self.equals is not None:
            return self.equals in chosen
        if self.in_ is not None:
            return not chosen.isdisjoint(self.in_)
        return chosen.isdisjoint(self.not_in or ())

    def referenced_categories(self) -> frozenset[str]:
        """The full keys of every category this condition reads."""
        return frozenset(leaf.category or "" for _, leaf in self._leaves(()))

    def _leaves(self, loc: Loc) -> Iterator[tuple[Loc, Condition]]:
        """Each ``{category, ...}`` leaf with its location, for error paths."""
        for alias, children in (("all", self.all_), ("any", self.any_)):
            for index, child in enumerate(children or ()):
                yield from child._leaves((*loc, alias, index))
        if self.category is not None:
            yield loc, self

    def _tested_values(self) -> list[tuple[Loc, str]]:
        if self.equals is not None:
            return [(("equals",), self.equals)]
        field, keys = ("in", self.in_) if self.in_ is not None else ("not_in", self.not_in)
        return [((field, index), key) for index, key in enumerate(keys or ())]


def _chosen_keys(value: object) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, (str, bool)):
        return frozenset({str(_bool_as_key(value))})
    if isinstance(value, (list, tuple, set, frozenset)):
        return frozenset(str(_bool_as_key(item)) for item in value)
    raise TypeError(f"a category value must be a value key, a bool or a list of keys, not {value!r}")


class CategorySpec(_Spec):
    """One question about a region, such as ``hair.color``."""

    key: Key
    question: Text
    kind: CategoryKind
    when: Condition | None = None
    caption: CaptionSpec = CaptionSpec()
    trust_threshold: Annotated[float, Field(strict=True, gt=0, le=1)] = 0.85
    sensitive: StrictBool = False
    values: tuple[ValueSpec, ...] = ()

    _full_key: str = PrivateAttr(default="")

    @property
    def full_key(self) -> str:
        """``<region>.<key>``; set when the category is validated inside its region."""
        # Read from the private dict directly: pydantic's __getattr__ for private attributes is
        # slow, and conditions and captions read full keys in loops over every label.
        private = self.__pydantic_private__
        full_key = private.get("_full_key") if private else None
        return str(full_key or self.key)

    def value(self, key: str) -> ValueSpec:
        """The value with this key; raises KeyError."""
        for value in self.values:
            if value.key == key:
                return value
        raise KeyError(f"{self.full_key} has no value {key!r}")

    @model_validator(mode="before")
    @classmethod
    def _implied_boolean_values(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kind") == "boolean" and not data.get("values"):
            said = data["key"].replace("_", " ") if isinstance(data.get("key"), str) else ""
            implied = [
                {"key": "true", "label": "yes", "caption": said},
                {"key": "false", "label": "no", "caption": ""},
            ]
            return {**data, "values": implied}
        return data

    @model_validator(mode="after")
    def _values_fit_kind(self) -> CategorySpec:
        problems: list[tuple[Loc, str]] = []
        if self.kind in ("single", "multi") and not self.values:
            problems.append((("values",), f"a {self.kind} category needs at least one value"))
        if self.kind == "text" and self.values:
            problems.append((("values",), "a text category takes free text and may not list values"))
        if self.kind == "boolean" and sorted(v.key for v in self.values) != ["false", "true"]:
            problems.append((("values",), "a boolean category's values are exactly `true` and `false`"))
        seen: set[str] = set()
        for index, value in enumerate(self.values):
            if value.key in seen:
                problems.append((("values", index, "key"), f"duplicate value key {value.key!r}"))
            seen.add(value.key)
        # Boolean prompts are optional (a VQA labeler can ask the question), but all or none.
        needs_prompts = self.kind != "boolean" or any(v.prompts for v in self.values)
        for index, value in enumerate(self.values):
            if needs_prompts and not value.prompts:
                message = "a closed-vocabulary value needs at least one zero-shot prompt"
                problems.append((("values", index, "prompts"), message))
        if self.caption.role == "noun" and self.kind == "multi":
            problems.append((("caption", "role"), "a multi category cannot be a group's single noun"))
        if problems:
            raise _ProblemsError(problems)
        return self


class RegionSpec(_Spec):
    """A body region aligned with ATR parsing labels, and the questions asked about it."""

    key: Key
    name: Text
    parsing_ids: tuple[ParsingId, ...]
    categories: tuple[CategorySpec, ...]

    @model_validator(mode="after")
    def _unique_and_named(self) -> RegionSpec:
        problems = _empty_lists({"parsing_ids": self.parsing_ids, "categories": self.categories})
        problems += _duplicates(self.parsing_ids, "parsing_ids", "duplicate parsing id {!r}")
        problems += _duplicates(
            [c.key for c in self.categories], "categories", "duplicate category key {!r}", "key"
        )
        if problems:
            raise _ProblemsError(problems)
        for category in self.categories:
            category._full_key = f"{self.key}.{category.key}"
        return self


class CaptionGroupSpec(_Spec):
    """One group of the caption, in CosmicMan's aa_text order; ``noun`` ends the group's text."""

    key: Key
    noun: StrictStr = ""
    parsing_ids: tuple[ParsingId, ...] = ()


class TaxonomySpec(_Spec):
    """A complete, valid taxonomy."""

    name: Slug
    description: StrictStr = ""
    caption_groups: tuple[CaptionGroupSpec, ...]
    regions: tuple[RegionSpec, ...]

    _categories: dict[str, tuple[RegionSpec, CategorySpec]] = PrivateAttr(default_factory=dict)
    # Each category after every category its condition reads, so one pass settles applicability.
    _evaluation_order: tuple[CategorySpec, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _references_resolve(self) -> TaxonomySpec:
        problems = _empty_lists({"caption_groups": self.caption_groups, "regions": self.regions})
        groups, regions = [g.key for g in self.caption_groups], [r.key for r in self.regions]
        problems += _duplicates(groups, "caption_groups", "duplicate caption group {!r}", "key")
        problems += _duplicates(regions, "regions", "duplicate region key {!r}", "key")
        located: dict[str, tuple[Loc, CategorySpec]] = {}
        for loc, category in self._located_categories():
            located.setdefault(category.full_key, (loc, category))  # duplicates reported above
        problems += self._caption_problems()
        problems += _condition_problems(located)
        if problems:
            raise _ProblemsError(problems)
        self._categories = {c.full_key: (r, c) for r in self.regions for c in r.categories}
        self._evaluation_order = _evaluation_order(self.categories())
        return self

    def _located_categories(self) -> Iterator[tuple[Loc, CategorySpec]]:
        for r_index, region in enumerate(self.regions):
            for c_index, category in enumerate(region.categories):
                yield ("regions", r_index, "categories", c_index), category

    def _caption_problems(self) -> list[tuple[Loc, str]]:
        groups = {g.key for g in self.caption_groups}
        noun_of: dict[str, str] = {}
        problems: list[tuple[Loc, str]] = []
        for loc, category in self._located_categories():
            group = category.caption.group
            if group is not None and group not in groups:
                problems.append(((*loc, "caption", "group"), f"unknown caption group {group!r}"))
            elif group is not None and category.caption.role == "noun":
                if group in noun_of:
                    message = f"caption group {group!r} already takes its noun from {noun_of[group]}"
                    problems.append(((*loc, "caption", "role"), message))
                noun_of.setdefault(group, category.full_key)
        return problems

    def content_hash(self) -> str:
        """sha256 of the canonical JSON of the content; YAML layout and spelled-out defaults aside."""
        dumped = self.model_dump(mode="json", exclude_none=True)
        canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def categories(self) -> list[CategorySpec]:
        """Every category, region by region, in document order."""
        return [c for r in self.regions for c in r.categories]

    def category(self, full_key: str) -> CategorySpec:
        """The category with this ``<region>.<key>``; raises KeyError."""
        return self._lookup(full_key)[1]

    def region_of(self, full_key: str) -> RegionSpec:
        """The region holding the category ``full_key``; raises KeyError."""
        return self._lookup(full_key)[0]

    def _lookup(self, full_key: str) -> tuple[RegionSpec, CategorySpec]:
        try:
            return self._categories[full_key]
        except KeyError:
            raise KeyError(f"taxonomy {self.name!r} has no category {full_key!r}") from None

    def applicable_categories(self, values: Mapping[str, object]) -> list[CategorySpec]:
        """The categories to ask, in document order, given the values known so far.

        A condition sees only the values of applicable categories, so a category that depends
        on a non-applicable one is not applicable either (no coat color without a coat).
        """
        visible: dict[str, object] = {}
        applicable: set[str] = set()
        for category in self._evaluation_order:
            if category.when is None or category.when.evaluate(visible):
                applicable.add(category.full_key)
                if category.full_key in values:
                    visible[category.full_key] = values[category.full_key]
        return [c for c in self.categories() if c.full_key in applicable]


def _empty_lists(lists: Mapping[str, tuple[object, ...] | None]) -> list[tuple[Loc, str]]:
    # Checked by validators, not Field(min_length=1): pydantic counts only the items that
    # validated, so a list whose every item is wrong would be reported as empty as well.
    return [((name,), "needs at least one item") for name, items in lists.items() if items == ()]


def _duplicates(keys: Any, field: str, message: str, *suffix: str) -> list[tuple[Loc, str]]:
    seen: set[Hashable] = set()
    problems: list[tuple[Loc, str]] = []
    for index, key in enumerate(keys):
        if key in seen:
            problems.append(((field, index, *suffix), message.format(key)))
        seen.add(key)
    return problems


def _condition_problems(located: dict[str, tuple[Loc, CategorySpec]]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    depends_on: dict[str, list[str]] = {}
    for full_key, (loc, category) in located.items():
        if category.when is None:
            continue
        depends_on[full_key] = []
        for leaf_loc, leaf in category.when._leaves((*loc, "when")):
            target_key = leaf.category or ""
            problem = _leaf_problem(full_key, target_key, located)
            if problem:
                problems.append(((*leaf_loc, "category"), problem))
                continue
            depends_on[full_key].append(target_key)
            target = located[target_key][1]
            for value_loc, value_key in leaf._tested_values():
                if value_key not in {v.key for v in target.values}:
                    problems.append(((*leaf_loc, *value_loc), f"{target_key} has no value {value_key!r}"))
    for full_key, cycle in _cycles(depends_on):
        message = "`when` conditions form a cycle: " + " -> ".join(cycle)
        problems.append(((*located[full_key][0], "when"), message))
    return problems


def _leaf_problem(full_key: str, target_key: str, located: dict[str, tuple[Loc, CategorySpec]]) -> str:
    if target_key == full_key:
        return f"{full_key} cannot depend on itself"
    if target_key not in located:
        return f"unknown category {target_key!r}"
    target = located[target_key][1]
    if target.kind == "text":
        return f"{target_key} is a text category and has no values to compare"
    if target.sensitive:
        # A project may leave sensitive categories out entirely; nothing may hinge on them.
        return f"{target_key} is sensitive, and conditions may not depend on sensitive categories"
    return ""


def _cycles(depends_on: dict[str, list[str]]) -> Iterator[tuple[str, list[str]]]:
    """Each cycle once, found by depth-first search as (the category closing it, the path)."""
    state: dict[str, str] = {}

    def visit(key: str, path: list[str]) -> Iterator[tuple[str, list[str]]]:
        state[key] = "open"
        for target in depends_on.get(key, ()):
            if state.get(target) == "open":
                yield key, [*path[path.index(target) :], key, target]
            elif target not in state:
                yield from visit(target, [*path, key])
        state[key] = "done"

    for key in depends_on:
        if key not in state:
            yield from visit(key, [])


def _evaluation_order(categories: list[CategorySpec]) -> tuple[CategorySpec, ...]:
    by_key = {c.full_key: c for c in categories}
    ordered: dict[str, CategorySpec] = {}

    def place(category: CategorySpec) -> None:
        if category.full_key in ordered:
            return
        for dependency in sorted(category.when.referenced_categories() if category.when else ()):
            place(by_key[dependency])
        ordered[category.full_key] = category

    for category in categories:
        place(category)
    return tuple(ordered.values())


class _YamlLoader(yaml.SafeLoader):
    """A safe loader with YAML 1.2 booleans that refuses duplicate mapping keys.

    YAML 1.1 reads `no`, `on` and `off` as booleans, which would silently turn a value key such
    as `no` into False; and a repeated key such as two `when:` would silently keep the last.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if (key_node.tag, key_node.value) in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key_node.value!r}", key_node.start_mark,
                    )  # fmt: skip
                seen.add((key_node.tag, key_node.value))
        return super().construct_mapping(node, deep)


_BOOL_TAG = "tag:yaml.org,2002:bool"
_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_taxonomy(text: str | bytes) -> TaxonomySpec:
    """Parse and validate a taxonomy document; raises TaxonomyValidationError with every problem.
    Specs are immutable, so a document parsed lately is not parsed again (YAML parsing is most of
    the cost, about 0.3 s for the default taxonomy, which every new project adds)."""
    return _load_taxonomy(text)


@lru_cache(maxsize=16)
def _load_taxonomy(text: str | bytes) -> TaxonomySpec:
    try:
        data = yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - _YamlLoader is a SafeLoader
    except yaml.YAMLError as exc:
        raise TaxonomyValidationError([TaxonomyError("", _yaml_message(exc))]) from None
    if not isinstance(data, dict):
        found = "an empty document" if data is None else f"a {type(data).__name__}"
        message = f"a taxonomy must be a YAML mapping, found {found}"
        raise TaxonomyValidationError([TaxonomyError("", message)])
    try:
        return TaxonomySpec.model_validate(data)
    except ValidationError as exc:
        errors = [error for detail in exc.errors() for error in _taxonomy_errors(detail)]
        raise TaxonomyValidationError(errors) from None


def _yaml_message(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return f"invalid YAML: {exc}"


_MESSAGES = {"missing": "this field is required", "extra_forbidden": "unknown field"}


def _taxonomy_errors(detail: ErrorDetails) -> list[TaxonomyError]:
    cause = detail.get("ctx", {}).get("error")
    if isinstance(cause, _ProblemsError):
        return [TaxonomyError(_path((*detail["loc"], *loc)), message) for loc, message in cause.problems]
    return [TaxonomyError(_path(detail["loc"]), _message(detail))]


def _message(detail: ErrorDetails) -> str:
    kind, context = detail["type"], detail.get("ctx", {})
    if kind == "value_error":
        return str(context["error"])
    if kind == "string_pattern_mismatch" and context.get("pattern") in _PATTERN_MESSAGES:
        return f"{_PATTERN_MESSAGES[context['pattern']]}, got {detail['input']!r}"
    return _MESSAGES.get(kind, detail["msg"])


def _path(loc: Loc) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else part
    return path


_DEFAULTS = "defaults"


def default_names() -> list[str]:
    """The names of the taxonomies shipped with the server, sorted."""
    folder = resources.files(__package__ or "server.taxonomy").joinpath(_DEFAULTS)
    return sorted(e.name.removesuffix(".yaml") for e in folder.iterdir() if e.name.endswith(".yaml"))


@lru_cache(maxsize=8)
def load_default(name: str = "human-v1") -> TaxonomySpec:
    """A taxonomy shipped with the server (specs are immutable, so one copy is shared)."""
    if name not in default_names():
        raise UnknownTaxonomyError(f"no default taxonomy named {name!r}; shipped: {default_names()}")
    document = resources.files(__package__ or "server.taxonomy").joinpath(_DEFAULTS, f"{name}.yaml")
    return load_taxonomy(document.read_bytes())

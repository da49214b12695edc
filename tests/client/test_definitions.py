"""Segment definition files and the order references impose."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from segmentd_client._requests import desired_segment
from segmentd_client.definitions import DefinitionError, in_dependency_order, load_definitions, references


def _segment(name: str, *refers_to: str) -> dict[str, object]:
    rules = [{"segment": {"name": other}} for other in refers_to]
    return {"name": name, "rule": {"any": {"rules": rules}}}


def test_load_definitions__json_list_yaml_and_folder(tmp_path: Path):
    # Given
    (tmp_path / "a.json").write_text(
        '[{"name": "a", "rule": {"all": {}}}, {"name": "b", "rule": {"any": {}}}]'
    )
    (tmp_path / "c.yml").write_text("name: c\nrule: {none: {}}\n")
    (tmp_path / "notes.txt").write_text("ignored")
    # When
    found = load_definitions(tmp_path)
    # Then
    assert [definition["name"] for definition in found] == ["a", "b", "c"]
    assert load_definitions(tmp_path / "c.yml") == [{"name": "c", "rule": {"none": {}}}]


def test_load_definitions__recursive__subfolders_by_path_hidden_ones_skipped(tmp_path: Path):
    # Given: definitions in a folder, its subfolders, and a hidden folder
    (tmp_path / "z.yml").write_text("name: z\nrule: {all: {}}\n")
    (tmp_path / "starter" / "deep").mkdir(parents=True)
    (tmp_path / "starter" / "b.yml").write_text("name: b\nrule: {all: {}}\n")
    (tmp_path / "starter" / "deep" / "a.yml").write_text("name: a\nrule: {all: {}}\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.json").write_text("{}")

    # When / Then: without recursive, the folder's own files only; with it, every subfolder
    assert [definition["name"] for definition in load_definitions(tmp_path)] == ["z"]
    found = load_definitions(tmp_path, recursive=True)
    assert [definition["name"] for definition in found] == ["b", "a", "z"]  # starter/b < starter/deep/a


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.txt", "", "not a .json, .yaml or .yml file"),
        ("a.json", "{", "not valid JSON"),
        ("a.yaml", "a: [", "not valid YAML"),
        ("a.json", '[{"name": "a", "rule": {}}, {"rule": {}}]', "item 2: a segment definition is a mapping"),
        ("a.yaml", "- just a string\n", "a segment definition is a mapping with a name and a rule"),
        # Deeper than the parsers recurse, and deep enough for the walks after them to
        ("a.json", '{"name": "a", "rule": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested more than 200"),
        ("a.yaml", "name: a\nrule: " + "[" * 100_000 + "]" * 100_000, "nested more than 200"),
        ("a.json", '{"name": "a", "rule": ' + "[" * 400 + "]" * 400 + "}", "nested more than 200"),
    ],
)
def test_load_definitions__bad_file__error_names_it(tmp_path: Path, name: str, text: str, message: str):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DefinitionError, match=message) as raised:
        load_definitions(path)
    assert str(path) in str(raised.value)


def test_load_definitions__missing_file(tmp_path: Path):
    with pytest.raises(DefinitionError, match="No such file"):
        load_definitions(tmp_path / "nope.json")


def test_references__nested_anywhere_in_the_rule():
    definition = {
        "name": "x",
        "rule": {
            "all": {"rules": [{"none": {"rules": [{"segment": {"name": "a"}}]}}, {"segment": {"name": "b"}}]}
        },
    }
    assert references(definition) == {"a", "b"}


def test_in_dependency_order__referenced_first_otherwise_in_order():
    definitions = [_segment("c", "b"), _segment("a"), _segment("b", "a", "outside"), _segment("d")]
    assert [definition["name"] for definition in in_dependency_order(definitions)] == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("definitions", "message"),
    [
        ([_segment("a", "b"), _segment("b", "c"), _segment("c", "a")], "cycle: a -> b -> c -> a"),
        ([_segment("a", "a")], "cycle: a -> a"),
        ([_segment("a"), _segment("a")], "'a' is defined twice"),
    ],
)
def test_in_dependency_order__cycle_or_duplicate__refused(definitions, message):
    with pytest.raises(DefinitionError, match=message):
        in_dependency_order(definitions)


def _deep_definition(groups: int) -> dict[str, Any]:
    rule: dict[str, Any] = {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "free"}}
    for _ in range(groups):
        rule = {"all": {"rules": [rule]}}
    return {"name": "deep", "rule": rule}


def test_definitions_in_code__nested_deeper_than_a_file_may__refused_naming_the_segment() -> None:
    deep = _deep_definition(3000)  # deeper than the walks below could recurse
    with pytest.raises(DefinitionError, match="segment 'deep': nested more than 200"):
        in_dependency_order([deep])
    with pytest.raises(DefinitionError, match="segment 'deep': nested more than 200"):
        desired_segment(deep)
    assert in_dependency_order([_deep_definition(60)])[0]["name"] == "deep"  # under 200 levels: kept


def test_definitions_in_code__deep_read_only_mappings__refused_as_dicts_are() -> None:
    rule: Mapping[str, Any] = {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "free"}}
    for _ in range(3000):
        rule = MappingProxyType({"all": MappingProxyType({"rules": [rule]})})
    with pytest.raises(DefinitionError, match="nested more than 200"):
        in_dependency_order([{"name": "deep", "rule": rule}])

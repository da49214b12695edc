"""Differences between two segment definitions, node by node."""

from __future__ import annotations

import pytest

from segmentd.cli.diffs import changes


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param({"a": 1}, {"a": 1}, [], id="same"),
        pytest.param({"a": 1}, {"a": 2}, ["a: 1 -> 2"], id="changed-leaf"),
        pytest.param({"a": 1}, {"a": 1.5}, ["a: 1 -> 1.5"], id="number"),
        pytest.param({"a": 1}, {"a": True}, ["a: 1 -> true"], id="bool-is-not-a-number"),
        pytest.param({"a": 1}, {"b": 1}, ["a: - 1", "b: + 1"], id="key-removed-and-added"),
        pytest.param(
            {"rule": {"all": {"rules": [{"x": 1}]}}},
            {"rule": {"all": {"rules": [{"x": 1}, {"y": 2}]}}},
            ['rule.all.rules[1]: + {"y": 2}'],
            id="rule-added",
        ),
        pytest.param({"r": [1, 2]}, {"r": [1]}, ["r[1]: - 2"], id="rule-removed"),
        pytest.param(
            {"rule": {"all": {}}},
            {"rule": {"any": {}}},
            ["rule.all: - {}", "rule.any: + {}"],
            id="group-kind",
        ),
    ],
)
def test_changes__table(old, new, expected):
    assert changes(old, new) == expected

"""The canonical JSON form of a rule tree (the proto3 JSON mapping of ``segmentd.v1.Rule``).

    {"all": {"rules": [{"condition": {"attribute": "plan", "operator": "EQUALS", "value": "free"}},
                       {"event": {"name": "login", "operator": "GREATER_THAN", "count": 3,
                                  "withinDays": 30}}]}}

Decoding accepts both the proto JSON names (``ignoreCase``, ``withinDays``, ``fromPercent``)
and the original field names (``ignore_case``, ...), as protobuf's own JSON parser does;
encoding writes the proto JSON names and omits default values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from segmentd.engine.operators import OPERATORS
from segmentd.engine.rules import (
    GROUP_KINDS,
    Condition,
    EventCondition,
    Group,
    JsonValue,
    ListReference,
    PercentageSplit,
    Rule,
    SegmentReference,
)
from segmentd.errors import InvalidRule

_UNSPECIFIED = "OPERATOR_UNSPECIFIED"
_INTEGER_TEXT = re.compile(r"-?[0-9]+")
_T = TypeVar("_T")


def rule_to_json(rule: Rule) -> dict[str, Any]:
    """Encode ``rule`` in its canonical JSON form."""
    if isinstance(rule, Group):
        return {rule.kind: {"rules": [rule_to_json(child) for child in rule.rules]}}
    if isinstance(rule, Condition):
        condition: dict[str, Any] = {"attribute": rule.attribute, "operator": rule.operator}
        if rule.value is not None:
            condition["value"] = rule.value
        if rule.ignore_case:
            condition["ignoreCase"] = True
        return {"condition": condition}
    if isinstance(rule, EventCondition):
        event: dict[str, Any] = {"name": rule.name, "operator": rule.operator, "count": rule.count}
        if rule.within_days:
            event["withinDays"] = rule.within_days
        return {"event": event}
    if isinstance(rule, SegmentReference):
        return {"segment": {"name": rule.name}}
    if isinstance(rule, ListReference):
        return {"inList": {"name": rule.name}}
    return {"split": {"salt": rule.salt, "fromPercent": rule.from_percent, "toPercent": rule.to_percent}}


def rule_from_json(data: object, path: str = "rule") -> Rule:
    """Decode a rule from its JSON form; ``path`` prefixes the field named in errors.

    Raises:
        InvalidRule: the structure is not a rule (unknown key, wrong type, several kinds).
    """
    fields = _object(data, path)
    if len(fields) != 1:
        raise InvalidRule(path, f"a rule has exactly one of {', '.join(_DECODERS)}; got {sorted(fields)}")
    [(key, body)] = fields.items()
    kind = _snake_case(key)  # proto JSON spells ``in_list`` as ``inList``; both are accepted
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise InvalidRule(f"{path}.{key}", f"unknown rule kind; expected one of {', '.join(_DECODERS)}")
    return decoder(kind, body, f"{path}.{kind}")


def _group(kind: str, body: object, path: str) -> Group:
    fields = _fields(body, path, {"rules"})
    rules = fields.get("rules", [])
    if not isinstance(rules, list):
        raise InvalidRule(f"{path}.rules", "must be a list of rules")
    children = tuple(rule_from_json(child, f"{path}.rules[{i}]") for i, child in enumerate(rules))
    return Group(cast("Any", kind), children)


def _condition(_kind: str, body: object, path: str) -> Condition:
    fields = _fields(body, path, {"attribute", "operator", "value", "ignore_case"})
    return Condition(
        attribute=_typed(fields, "attribute", str, "", path),
        operator=_operator(fields, path),
        value=cast("JsonValue", fields.get("value")),
        ignore_case=_typed(fields, "ignore_case", bool, False, path),
    )


def _event(_kind: str, body: object, path: str) -> EventCondition:
    fields = _fields(body, path, {"name", "operator", "count", "within_days"})
    return EventCondition(
        name=_typed(fields, "name", str, "", path),
        operator=_operator(fields, path),
        count=_integer(fields, "count", path),
        within_days=_integer(fields, "within_days", path),
    )


def _segment(_kind: str, body: object, path: str) -> SegmentReference:
    fields = _fields(body, path, {"name"})
    return SegmentReference(name=_typed(fields, "name", str, "", path))


def _in_list(_kind: str, body: object, path: str) -> ListReference:
    fields = _fields(body, path, {"name"})
    return ListReference(name=_typed(fields, "name", str, "", path))


def _split(_kind: str, body: object, path: str) -> PercentageSplit:
    fields = _fields(body, path, {"salt", "from_percent", "to_percent"})
    return PercentageSplit(
        salt=_typed(fields, "salt", str, "", path),
        from_percent=_number(fields, "from_percent", path),
        to_percent=_number(fields, "to_percent", path),
    )


_DECODERS: dict[str, Callable[[str, object, str], Rule]] = {
    **dict.fromkeys(GROUP_KINDS, _group),
    "condition": _condition,
    "event": _event,
    "segment": _segment,
    "split": _split,
    "in_list": _in_list,
}


def _object(data: object, path: str) -> Mapping[str, object]:
    if not isinstance(data, Mapping):
        raise InvalidRule(path, "must be a JSON object")
    return cast("Mapping[str, object]", data)


def _snake_case(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _fields(body: object, path: str, allowed: set[str]) -> dict[str, object]:
    """Return the object's fields keyed by their snake_case names, refusing unknown ones."""
    fields: dict[str, object] = {}
    for key, value in _object(body, path).items():
        name = _snake_case(key)
        if name not in allowed:
            raise InvalidRule(f"{path}.{key}", f"unknown field; expected one of {', '.join(sorted(allowed))}")
        fields[name] = value
    return fields


def _typed(fields: Mapping[str, object], name: str, kind: type[_T], default: _T, path: str) -> _T:
    value = fields.get(name, default)
    if not isinstance(value, kind):
        raise InvalidRule(f"{path}.{name}", f"must be a {kind.__name__}")
    return value


def _operator(fields: Mapping[str, object], path: str) -> Any:
    operator = fields.get("operator", _UNSPECIFIED)
    if operator not in OPERATORS and operator != _UNSPECIFIED:
        raise InvalidRule(f"{path}.operator", f"unknown operator {operator!r}")
    return operator


def _integer(fields: Mapping[str, object], name: str, path: str) -> int:
    value = fields.get(name, 0)
    # Proto JSON may carry integers as strings or as integral floats. ASCII digits only:
    # str.isdigit would also pass "²", on which int() raises.
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRule(f"{path}.{name}", "must be an integer")
    return value


def _number(fields: Mapping[str, object], name: str, path: str) -> float:
    value = fields.get(name, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRule(f"{path}.{name}", "must be a number")
    try:
        return float(value)
    except OverflowError:  # an integer beyond the range of a double
        raise InvalidRule(f"{path}.{name}", "must be a number a double can hold") from None

"""Find the NUL character in any string of a request message.

PostgreSQL's ``text`` and ``jsonb`` cannot hold U+0000, and SQLite can: so that both stores
accept the same requests, every string of every request (ids, names, descriptions, labels,
attributes, salts, event names, trait keys and values, tokens) is refused when it holds
one. The walk names the field the way INVALID_ARGUMENT messages do everywhere
(``segment.rule.all.rules[2].condition.value``); a map or a ``Struct`` is named as a whole
(``profile.traits``), so the offending key is never echoed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

NUL = "\x00"
#: What a request holding NUL is told, after the field's path.
NUL_MESSAGE = "must not contain the NUL character (U+0000)"


def nul_field(message: Message, path: str = "") -> str | None:
    """Return the path of the first field of ``message`` holding a string with U+0000, or None."""
    for descriptor, value in message.ListFields():
        name = f"{path}.{descriptor.name}" if path else descriptor.name
        found = _field_holds_nul(descriptor, value, name)
        if found is not None:
            return found
    return None


def _field_holds_nul(descriptor: FieldDescriptor, value: Any, name: str) -> str | None:
    message_type = descriptor.message_type
    if message_type is not None and message_type.GetOptions().map_entry:
        return name if any(_holds_nul(item) for item in _map_items(value)) else None
    if message_type is not None and message_type.full_name in _HOLDS_NUL_BY_TYPE:
        return name if _HOLDS_NUL_BY_TYPE[message_type.full_name](value) else None
    if descriptor.is_repeated:
        for index, item in enumerate(value):
            found = _scalar_or_message(descriptor, item, f"{name}[{index}]")
            if found is not None:
                return found
        return None
    return _scalar_or_message(descriptor, value, name)


def _scalar_or_message(descriptor: FieldDescriptor, value: Any, name: str) -> str | None:
    if descriptor.type == FieldDescriptor.TYPE_MESSAGE:
        return nul_field(value, name)
    if isinstance(value, str) and NUL in value:
        return name
    return None


def _map_items(value: Any) -> Iterable[Any]:
    for key, item in value.items():
        yield key
        yield item


def _holds_nul(value: Any) -> bool:
    """Whether a map item, a ``Struct``, ``Value`` or ``ListValue`` (or a scalar) holds U+0000."""
    if isinstance(value, str):
        return NUL in value
    if not isinstance(value, Message):
        return False
    return any(
        _holds_nul(item)
        for descriptor, field_value in value.ListFields()
        for item in _children(descriptor, field_value)
    )


def _children(descriptor: FieldDescriptor, value: Any) -> Iterable[Any]:
    if descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
        return _map_items(value)
    if descriptor.is_repeated:
        return value  # type: ignore[no-any-return]
    return (value,)


# Structs (the traits of every imported profile) are walked through their own fields: the
# generic walk, by descriptors and ListFields, cost ~50 us a profile, more than decoding them.
def struct_holds_nul(struct: Any) -> bool:
    """Whether a key or a string of the ``Struct`` holds U+0000."""
    fields = struct.fields
    return any(NUL in key or _value_holds_nul(fields[key]) for key in fields)


def _value_holds_nul(value: Any) -> bool:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return NUL in value.string_value
    if kind == "struct_value":
        return struct_holds_nul(value.struct_value)
    if kind == "list_value":
        return _list_holds_nul(value.list_value)
    return False


def _list_holds_nul(values: Any) -> bool:
    return any(_value_holds_nul(item) for item in values.values)


_HOLDS_NUL_BY_TYPE: Final[dict[str, Callable[[Any], bool]]] = {
    "google.protobuf.Struct": struct_holds_nul,
    "google.protobuf.Value": _value_holds_nul,
    "google.protobuf.ListValue": _list_holds_nul,
}

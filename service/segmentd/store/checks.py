"""Input checks of the store's writes, each failing with ``InvalidArgument`` naming the field.

The limits are documented in docs/store.md. Strings must be valid UTF-8 without NUL
characters on both databases, because PostgreSQL refuses NUL in ``text`` and ``jsonb``: the
same input must be accepted or refused whatever the database.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final, cast

from segmentd.engine.events import is_reserved_event_name
from segmentd.errors import InvalidArgument

MAX_USER_ID_LENGTH: Final = 256
MAX_EVENT_NAME_LENGTH: Final = 256
MAX_EVENT_COUNT: Final = 2**31 - 1  # Event.count is an int32 in the API
MAX_TRAITS_BYTES: Final = 64 * 1024
MAX_TRAITS_DEPTH: Final = 16
MAX_LABELS: Final = 64
MAX_LABEL_LENGTH: Final = 63

_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]*")
# Exactly the characters of Unicode category Cc (C0, DEL, C1), which is what "control
# character" means here; a regular expression tests a string ~8x faster than
# unicodedata.category per character (tests check the two agree on every code point).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SCALAR_TYPES: Final = frozenset({float, int, bool, type(None)})


def check_segment_name_given(name: str, field: str) -> None:
    """Refuse an empty segment name in a request; a name no segment has is ``NOT_FOUND`` later.

    Raises:
        InvalidArgument: naming ``field``.
    """
    if not name:
        raise InvalidArgument(field, "a segment name is required")


def check_segment_names_given(names: Iterable[str], field: str) -> None:
    """Refuse an empty name among ``names``, naming it ``field[i]``.

    Raises:
        InvalidArgument: naming ``field[i]``.
    """
    for index, name in enumerate(names):
        check_segment_name_given(name, f"{field}[{index}]")


def check_user_id(user_id: object, field: str) -> str:
    """Return ``user_id`` if it is 1..256 characters without control characters.

    Raises:
        InvalidArgument: naming ``field``.
    """
    return _check_name(user_id, field, MAX_USER_ID_LENGTH)


def check_user_ids(user_ids: Sequence[object], field: str, start: int = 0) -> None:
    """Check each id as ``check_user_id`` does, naming the first bad one ``field[start + i]``.

    A whole batch is checked at once (its lengths, then one scan of the ids joined), which
    costs a fraction of checking the ids one by one: lists import millions of them.

    Raises:
        InvalidArgument: naming the first bad id's position.
    """
    try:
        joined = "".join(user_ids)  # type: ignore[arg-type]  # a TypeError for a non-string
        lengths = [len(user_id) for user_id in user_ids] or [1]  # type: ignore[arg-type]
    except TypeError:
        pass
    else:
        if 1 <= min(lengths) and max(lengths) <= MAX_USER_ID_LENGTH and _is_clean(joined):
            return
    for index, user_id in enumerate(user_ids):  # find which one, to name it
        check_user_id(user_id, f"{field}[{start + index}]")


def check_event_name(name: object, field: str) -> str:
    """Return the event ``name`` if it is 1..256 characters without control characters.

    ``*`` and names starting with ``$`` are refused: they name pseudo-events
    (``segmentd.engine.events``), which are counted, never recorded.

    Raises:
        InvalidArgument: naming ``field``.
    """
    checked = _check_name(name, field, MAX_EVENT_NAME_LENGTH)
    if is_reserved_event_name(checked):
        raise InvalidArgument(
            field, f"{checked!r} is reserved: '*' and names starting with '$' are pseudo-events"
        )
    return checked


def check_event_count(count: object, field: str) -> int:
    """Return the number of events ``count`` stands for: 0 means 1.

    Raises:
        InvalidArgument: naming ``field``, when not an integer in 0..2³¹-1.
    """
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_EVENT_COUNT:
        raise InvalidArgument(field, f"must be an integer from 0 to {MAX_EVENT_COUNT}")
    return count or 1


def utc_day(time: object, field: str) -> date:
    """Return the UTC date of ``time``; a naive datetime is taken as UTC.

    Raises:
        InvalidArgument: naming ``field``, when ``time`` is not a datetime.
    """
    if not isinstance(time, datetime):
        raise InvalidArgument(field, "is required")
    if time.tzinfo is None:
        return time.date()
    return time.astimezone(UTC).date()


def check_labels(labels: object, field: str) -> dict[str, str]:
    """Return ``labels`` as a dict if they respect the label rules.

    At most 64 labels; keys 1..63 characters matching ``[a-z][a-z0-9_-]*``; values 0..63
    characters without control characters.

    Raises:
        InvalidArgument: naming ``field``.
    """
    if not isinstance(labels, Mapping):
        raise InvalidArgument(field, "must be a map of strings")
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(field, f"at most {MAX_LABELS} labels are allowed")
    for key, value in labels.items():
        if not isinstance(key, str) or len(key) > MAX_LABEL_LENGTH or not _LABEL_KEY.fullmatch(key):
            raise InvalidArgument(field, f"label key {key!r} must match [a-z][a-z0-9_-]{{0,62}}")
        if not isinstance(value, str) or len(value) > MAX_LABEL_LENGTH or _has_control(value):
            raise InvalidArgument(
                f"{field}[{key}]", f"must be a string of at most {MAX_LABEL_LENGTH} characters"
            )
    return dict(labels)


class CheckedTraits(dict[str, Any]):
    """Traits whose decoder held them to ``check_traits``' rules as it built them.

    The import's ``Struct`` decoder (``segmentd.api.import_decoding``) checks keys, depth and
    strings on its one walk over each profile; ``check_traits`` then has nothing left to check.
    Any traits that might fail are decoded as a plain ``dict`` and checked here as usual.
    """


def check_traits(traits: object, field: str) -> dict[str, Any]:
    r"""Return ``traits`` if they are a storable JSON object.

    A JSON object whose keys contain no ``"``, ``\`` or control character (SQLite's JSON
    paths cannot address keys that JSON escapes); values are null, booleans, finite
    numbers (integers within 64 bits), strings without NUL, lists and objects, nested at
    most 16 deep (the traits object itself is depth 1). The 64 KiB limit on the stored
    traits is checked by ``check_traits_size``.

    Raises:
        InvalidArgument: naming ``field``.
    """
    if type(traits) is CheckedTraits:
        return traits
    if not isinstance(traits, Mapping):
        raise InvalidArgument(field, "must be a JSON object")
    _check_json(traits, field, depth=1)
    return dict(traits)


def check_traits_size(traits: Mapping[str, Any], field: str) -> str:
    """Refuse traits over 64 KiB as compact UTF-8 JSON; return that JSON.

    Raises:
        InvalidArgument: naming ``field``.
    """
    text = json.dumps(traits, ensure_ascii=False, separators=(",", ":"))
    size = len(text.encode())
    if size > MAX_TRAITS_BYTES:
        raise InvalidArgument(field, f"are {size} bytes as JSON; at most {MAX_TRAITS_BYTES} are allowed")
    return text


def _check_name(value: object, field: str, max_length: int) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        raise InvalidArgument(field, f"must be 1 to {max_length} characters")
    if _has_control(value) or not _is_utf8(value):
        raise InvalidArgument(field, "must not contain control characters")
    return value


def _check_json(value: object, field: str, depth: int) -> None:
    # Runs on every value of every imported profile: the exact types decoded JSON and Structs
    # hold are dispatched first, before the ABCs' slower isinstance.
    kind = type(value)
    if kind is str:
        _check_string(cast("str", value), field)
    elif kind is dict:
        _check_object(cast("dict[object, object]", value), field, depth)
    elif kind is list:
        _check_array(cast("list[object]", value), field, depth)
    elif kind in _SCALAR_TYPES:
        _check_scalar(value, field)
    elif isinstance(value, Mapping):
        _check_object(value, field, depth)
    elif isinstance(value, list | tuple):
        _check_array(value, field, depth)
    else:
        _check_scalar(value, field)


def _check_object(value: Mapping[object, object], field: str, depth: int) -> None:
    _check_container_depth(field, depth)
    for key, item in value.items():
        if not isinstance(key, str) or not is_addressable_key(key):
            raise InvalidArgument(
                field, f"key {key!r} must be a string without quotes, backslashes or control characters"
            )
        if not _is_plain_valid(item):  # most values: no field name to build, no call deeper
            _check_json(item, f"{field}.{key}", depth + 1)


def _is_plain_valid(value: object) -> bool:
    """Whether ``value`` is an ASCII string without NUL, a finite float, a boolean or None."""
    kind = type(value)
    if kind is str:
        return cast("str", value).isascii() and "\x00" not in cast("str", value)
    if kind is float:
        return math.isfinite(cast("float", value))
    return kind is bool or value is None


def _check_array(value: Sequence[object], field: str, depth: int) -> None:
    _check_container_depth(field, depth)
    for index, item in enumerate(value):
        _check_json(item, f"{field}[{index}]", depth + 1)


def _check_container_depth(field: str, depth: int) -> None:
    if depth > MAX_TRAITS_DEPTH:
        raise InvalidArgument(field, f"are nested more than {MAX_TRAITS_DEPTH} levels deep")


def _check_string(value: str, field: str) -> None:
    if "\x00" in value or not _is_utf8(value):
        raise InvalidArgument(field, "strings must be valid Unicode without NUL characters")


def _check_scalar(value: object, field: str) -> None:
    if isinstance(value, str):
        _check_string(value, field)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument(field, "numbers must be finite")
    elif isinstance(value, int) and not isinstance(value, bool):
        # Beyond 64 bits SQLite turns integers into doubles and PostgreSQL keeps them exact.
        if not -(2**63) <= value < 2**63:
            raise InvalidArgument(field, "integers must fit in 64 bits")
    elif value is not None and not isinstance(value, bool):
        raise InvalidArgument(field, f"{type(value).__name__} is not a JSON value")


@functools.lru_cache(maxsize=4096)  # the same few keys recur in every profile of an import
def is_addressable_key(key: str) -> bool:
    r"""Whether an object key can be read by an attribute path on both databases.

    SQLite 3.40 compares JSON path labels with the key's text as stored, escapes and all,
    so a key JSON must escape (``"``, ``\``, control characters) could never be found.
    """
    return _is_utf8(key) and '"' not in key and "\\" not in key and not _has_control(key)


def is_storable_text(text: str) -> bool:
    """Whether both databases can hold ``text``: no NUL character, no lone surrogate.

    The drivers refuse either (an INTERNAL error), so text from unsigned or unchecked
    sources (page tokens) is tested before it reaches a query.
    """
    return "\x00" not in text and _is_utf8(text)


def _is_clean(text: str) -> bool:
    """No control character and no lone surrogate (which UTF-8 cannot encode)."""
    if text.isascii():
        # Among ASCII characters exactly the controls (C0 and DEL) are not printable, and
        # isprintable scans ~3x faster than the expression: list imports check millions of ids.
        return text.isprintable()
    return _CONTROL.search(text) is None and _is_utf8(text)


def _has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def _is_utf8(text: str) -> bool:
    if text.isascii():  # a flag of the string: no scan
        return True
    try:
        text.encode()
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True

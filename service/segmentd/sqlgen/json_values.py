"""One JSON value in SQL (a trait at a path, or one element of a list trait), per database.

    JsonValueSql                      what conditions need from a value: its JSON type, its
    ├── PostgresJson(jsonb)           text, number comparisons, equality with scalars, and
    │   └── PostgresTrait(path)       the elements of a list
    └── SqliteJson(type, value)

PostgreSQL reads paths with chained ``->`` (text keys only, so ``tags.0`` never indexes an
array, as in Python) and compares ``jsonb`` with ``jsonb``: no cast can fail on a value of
another type, and equality tests on a trait become ``traits @> '{"plan": "free"}'``, which a
GIN ``jsonb_path_ops`` index serves. SQLite reads a value's type with ``json_type`` (never
``json_extract``, which turns ``true`` into ``1``) and its SQL value with ``json_extract``, or
for keys that SQLite's JSON paths cannot spell, by walking ``json_each``.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal, cast

from sqlalchemy import (
    Boolean,
    ColumnElement,
    FromClause,
    Integer,
    Text,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB

from segmentd.engine.regex import to_postgres_regex
from segmentd.engine.traits import is_number
from segmentd.sqlgen.functions import REGEXP

#: The JSON types conditions test for.
Kind = Literal["string", "number", "boolean", "array"]
#: A scalar a condition compares with.
Scalar = str | int | float | bool
#: Builds a comparison, e.g. ``operator.lt``, on SQL expressions.
Comparison = Callable[[Any, Any], Any]

#: Lists up to this long are tested with one ``@>`` per element (each served by the GIN
#: index); longer ones with one hashed ``IN`` over jsonb values.
MAX_CONTAINMENT_ALTERNATIVES: Final = 16

_SQLITE_TYPES_BY_KIND: Final[Mapping[Kind, tuple[str, ...]]] = {
    "string": ("text",),
    "number": ("integer", "real"),
    "boolean": ("true", "false"),
    "array": ("array",),
}
# Keys SQLite's JSON path syntax reads verbatim: it compares a quoted path step with the key as
# written in the JSON text, escapes included, so other keys are looked up through json_each.
_PLAIN_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")
_INT64: Final = range(-(2**63), 2**63)


def when(guard: ColumnElement[bool], test: ColumnElement[bool]) -> ColumnElement[bool]:
    """``guard AND test``: ``test`` counts only for values of the type ``guard`` checks.

    The database may evaluate ``test`` first (PostgreSQL reorders ``AND``), which is safe
    because no expression built here can raise: nothing is cast, jsonb compares with jsonb,
    text with text. A plain ``AND`` lets the planner see each guard and each comparison as a
    separate clause (selectivity, indexes), which a ``CASE`` would hide. The result may be
    NULL (missing trait); negations make their operand two-valued first (``two_valued``).
    """
    return and_(guard, test)


def two_valued(test: ColumnElement[bool]) -> ColumnElement[bool]:
    """``COALESCE(test, false)``: NULL (missing, wrong type) becomes false."""
    return func.coalesce(test, false(), type_=Boolean)


def any_of(tests: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
    """``t1 OR t2 ...``; false for no tests."""
    return or_(*tests) if tests else false()


def _sql_text(value: str) -> ColumnElement[str]:
    """A constant string rendered inline: type names read better in logged SQL than binds."""
    return literal_column("'" + value.replace("'", "''") + "'", Text)


class JsonValueSql(ABC):
    """One JSON value in a query, and the SQL that tests it."""

    @abstractmethod
    def kind_is(self, kind: Kind) -> ColumnElement[bool]:
        """Whether the value is of JSON type ``kind``; NULL when it is missing."""

    @abstractmethod
    def is_present(self) -> ColumnElement[bool]:
        """Whether the value is there and not JSON ``null``; never NULL."""

    @abstractmethod
    def text(self) -> ColumnElement[str]:
        """The value as SQL text; a string's characters when ``kind_is("string")``."""

    @abstractmethod
    def number(self) -> ColumnElement[Any]:
        """The value, to compare with `number_literal` when ``kind_is("number")``."""

    @abstractmethod
    def number_literal(self, number: float) -> ColumnElement[Any]:
        """A number constant comparable with `number`."""

    @abstractmethod
    def equals_any_exact(self, items: Sequence[Scalar]) -> ColumnElement[bool]:
        """Whether the value equals one of ``items`` (same JSON type, numbers by value); never NULL."""

    def differs_from_all(self, items: Sequence[Scalar]) -> ColumnElement[bool]:
        """Whether the value (missing or not) equals none of ``items``; never NULL."""
        return ~two_valued(self.equals_any_exact(items))

    def present_and_differs(self, items: Sequence[Scalar]) -> ColumnElement[bool]:
        """Whether the value is present (not JSON ``null``) and equals none of ``items``; never NULL."""
        return and_(self.is_present(), self.differs_from_all(items))

    def number_between(self, low: float, high: float) -> ColumnElement[bool]:
        """Whether the value is a number from ``low`` to ``high``; may be NULL."""
        number = self.number()
        return when(
            self.kind_is("number"),
            and_(number >= self.number_literal(low), number <= self.number_literal(high)),
        )

    @abstractmethod
    def elements(self) -> tuple[FromClause, JsonValueSql]:
        """A table of the value's elements when it is a list (none otherwise), and an element."""

    @abstractmethod
    def ordered(self, text: ColumnElement[str]) -> ColumnElement[str]:
        """``text`` in a collation that orders by code point."""

    @abstractmethod
    def substring_test(self, text: ColumnElement[str], needle: str) -> ColumnElement[bool]:
        """Whether ``needle`` occurs in ``text``."""

    @abstractmethod
    def suffix(self, text: ColumnElement[str], length: int) -> ColumnElement[str]:
        """The last ``length`` (> 0) characters of ``text``."""

    @abstractmethod
    def regex_test(self, text: ColumnElement[str], pattern: str) -> ColumnElement[bool]:
        """Whether the RE2 ``pattern`` matches somewhere in ``text``."""

    def string_or_null(self) -> ColumnElement[str]:
        """The string when the value is one, else NULL."""
        return case((self.kind_is("string"), self.text()))

    def contains_exact(self, item: Scalar) -> ColumnElement[bool]:
        """Whether the value is a list with an element equal to ``item``; never NULL."""
        table, element = self.elements()
        return exists().select_from(table).where(element.equals_any_exact([item]))


class PostgresJson(JsonValueSql):
    """A ``jsonb`` value: an element of a list, or (subclass) a trait."""

    def __init__(self, jsonb: ColumnElement[Any]) -> None:
        self.jsonb = jsonb

    def kind_is(self, kind: Kind) -> ColumnElement[bool]:  # noqa: D102
        return func.jsonb_typeof(self.jsonb) == _sql_text(kind)

    def is_present(self) -> ColumnElement[bool]:  # noqa: D102
        # Not reached today: the elements of a list are only tested for equality, and a trait
        # (PostgresTrait) reads its presence as text. Kept so that every value answers it.
        return two_valued(func.jsonb_typeof(self.jsonb) != _sql_text("null"))  # pragma: no cover

    def text(self) -> ColumnElement[str]:  # noqa: D102
        return self.jsonb.op("#>>", return_type=Text)(literal_column("'{}'::text[]"))

    def number(self) -> ColumnElement[Any]:  # noqa: D102
        return self.jsonb

    def number_literal(self, number: float) -> ColumnElement[Any]:  # noqa: D102
        return literal(number, JSONB)

    def equals_any_exact(self, items: Sequence[Scalar]) -> ColumnElement[bool]:  # noqa: D102
        # jsonb equality is the semantics' equality: types must match, 1 = 1.0, strings bytewise.
        return two_valued(self.jsonb.in_([literal(item, JSONB) for item in items]))

    def differs_from_all(self, items: Sequence[Scalar]) -> ColumnElement[bool]:  # noqa: D102
        # One extraction and comparison per row: cheaper than NOT (traits @> ...), which no
        # index can serve anyway, and `x IS DISTINCT FROM c` is the clause a DBA would write.
        constants = [literal(item, JSONB) for item in items]
        if len(constants) == 1:
            return self.jsonb.is_distinct_from(constants[0])
        return func.coalesce(self.jsonb.not_in(constants), true(), type_=Boolean)

    def present_and_differs(self, items: Sequence[Scalar]) -> ColumnElement[bool]:  # noqa: D102
        # One term, one extraction: a missing value gives NULL (false), JSON null is in the list.
        constants: list[ColumnElement[Any]] = [literal(item, JSONB) for item in items]
        constants.append(literal_column("'null'::jsonb"))
        return two_valued(self.jsonb.not_in(constants))

    def number_between(self, low: float, high: float) -> ColumnElement[bool]:  # noqa: D102
        # No type guard: jsonb orders every string, null and empty array below every number
        # and every boolean, array and object above, so only numbers fall between two numbers.
        return and_(self.jsonb >= literal(low, JSONB), self.jsonb <= literal(high, JSONB))

    def elements(self) -> tuple[FromClause, JsonValueSql]:  # noqa: D102
        # jsonb_array_elements raises on a non-array: feed it an empty array instead.
        array = case((self.kind_is("array"), self.jsonb), else_=literal_column("'[]'::jsonb"))
        table = func.jsonb_array_elements(array).table_valued("value")
        return table, PostgresJson(table.c.value)

    def ordered(self, text: ColumnElement[str]) -> ColumnElement[str]:  # noqa: D102
        return text.collate("C")  # byte order of UTF-8 = code point order, whatever the locale

    def substring_test(self, text: ColumnElement[str], needle: str) -> ColumnElement[bool]:  # noqa: D102
        return func.strpos(text, literal(needle, Text), type_=Integer) > 0

    def suffix(self, text: ColumnElement[str], length: int) -> ColumnElement[str]:  # noqa: D102
        return func.right(text, length, type_=Text)

    def regex_test(self, text: ColumnElement[str], pattern: str) -> ColumnElement[bool]:  # noqa: D102
        return text.op("~", is_comparison=True)(literal(to_postgres_regex(pattern), Text))


class PostgresTrait(PostgresJson):
    """The trait at a path of ``profiles.traits``; equality uses index-friendly containment.

    Presence and negated equality with strings read the trait as text (``->>`` on the last
    step): ``->`` copies the value into a new ``jsonb`` and a ``jsonb`` comparison walks
    both values, which costs about twice a text comparison per row (docs/bench.md).
    """

    def __init__(self, traits: ColumnElement[Any], path: Sequence[str]) -> None:
        self.traits = type_coerce(traits, JSONB)
        self.path = tuple(path)
        jsonb: ColumnElement[Any] = self.traits
        for key in self.path[:-1]:
            jsonb = _step(jsonb, key)
        # Both read the last step from the same parent: the trait as jsonb, or its text, which
        # is a string's characters and NULL for a missing trait or JSON null (never 'null').
        self.as_text: ColumnElement[str] = jsonb.op("->>", return_type=Text)(literal(self.path[-1], Text))
        super().__init__(_step(jsonb, self.path[-1]))

    def is_present(self) -> ColumnElement[bool]:  # noqa: D102
        # `->>` is NULL exactly for a missing value and JSON null; never NULL itself.
        return self.as_text.is_not(None)

    def differs_from_all(self, items: Sequence[Scalar]) -> ColumnElement[bool]:  # noqa: D102
        if not _text_decides(items):
            return super().differs_from_all(items)
        texts = [literal(item, Text) for item in items]
        if len(texts) == 1:
            return self.as_text.is_distinct_from(texts[0])
        return func.coalesce(self.as_text.not_in(texts), true(), type_=Boolean)

    def present_and_differs(self, items: Sequence[Scalar]) -> ColumnElement[bool]:  # noqa: D102
        if not _text_decides(items):
            return super().present_and_differs(items)
        # A missing value and JSON null read as NULL: false, as NOT_* wants.
        return two_valued(self.as_text.not_in([literal(item, Text) for item in items]))

    def _contains(self, leaf: object) -> ColumnElement[bool]:
        document: object = leaf
        for key in reversed(self.path):
            document = {key: document}
        return self.traits.contains(literal(document, JSONB))

    def equals_any_exact(self, items: Sequence[Scalar]) -> ColumnElement[bool]:  # noqa: D102
        # traits @> {"a": {"b": x}} holds exactly when the trait at a.b equals x: containment
        # never looks into arrays for a scalar below the top level.
        if len(items) > MAX_CONTAINMENT_ALTERNATIVES:
            return super().equals_any_exact(items)
        return any_of([self._contains(item) for item in items])

    def contains_exact(self, item: Scalar) -> ColumnElement[bool]:  # noqa: D102
        return self._contains([item])  # traits @> {"tags": ["x"]}: a list with that element


class SqliteJson(JsonValueSql):
    """A value seen through SQLite's JSON1: its ``json_type`` and its SQL value."""

    def __init__(self, json_type: ColumnElement[str], value: ColumnElement[Any]) -> None:
        self.json_type = json_type
        self.value = value

    def kind_is(self, kind: Kind) -> ColumnElement[bool]:  # noqa: D102
        return self.json_type.in_([_sql_text(name) for name in _SQLITE_TYPES_BY_KIND[kind]])

    def is_present(self) -> ColumnElement[bool]:  # noqa: D102
        return two_valued(self.json_type != _sql_text("null"))

    def text(self) -> ColumnElement[str]:  # noqa: D102
        return self.value

    def number(self) -> ColumnElement[Any]:  # noqa: D102
        return self.value

    def number_literal(self, number: float) -> ColumnElement[Any]:  # noqa: D102
        # SQLite integers are 64-bit; a larger one can only be bound as a double.
        if isinstance(number, int) and number not in _INT64:
            return literal(float(number))
        return literal(number)

    def equals_any_exact(self, items: Sequence[Scalar]) -> ColumnElement[bool]:  # noqa: D102
        strings = [item for item in items if isinstance(item, str)]
        numbers = [self.number_literal(item) for item in items if is_number(item)]
        booleans = sorted({"true" if item else "false" for item in items if isinstance(item, bool)})
        tests = []
        if strings:
            tests.append(when(self.kind_is("string"), self.value.in_(strings)))
        if numbers:
            # SQLite compares integers and reals by value: 1 = 1.0.
            tests.append(when(self.kind_is("number"), self.value.in_(numbers)))
        if booleans:
            tests.append(two_valued(self.json_type.in_([_sql_text(name) for name in booleans])))
        return any_of(tests)

    def elements(self) -> tuple[FromClause, JsonValueSql]:  # noqa: D102
        # json_each of a scalar yields the scalar itself: only lists may reach it.
        array = case((self.kind_is("array"), self.value), else_=_sql_text("[]"))
        table = func.json_each(array).table_valued("type", "value")
        return table, SqliteJson(table.c.type, table.c.value)

    def ordered(self, text: ColumnElement[str]) -> ColumnElement[str]:  # noqa: D102
        return text  # SQLite's default BINARY collation compares UTF-8 bytes: code point order

    def substring_test(self, text: ColumnElement[str], needle: str) -> ColumnElement[bool]:  # noqa: D102
        return func.instr(text, literal(needle, Text), type_=Integer) > 0

    def suffix(self, text: ColumnElement[str], length: int) -> ColumnElement[str]:  # noqa: D102
        return func.substr(text, -length, type_=Text)

    def regex_test(self, text: ColumnElement[str], pattern: str) -> ColumnElement[bool]:  # noqa: D102
        return cast("ColumnElement[bool]", getattr(func, REGEXP)(literal(pattern, Text), text, type_=Boolean))


def _step(jsonb: ColumnElement[Any], key: str) -> ColumnElement[Any]:
    # `->` with a text key, never jsonb[key]: a subscript on an array reads '0' as an index
    # (and raises on 'x'), where the semantics say "missing".
    return jsonb.op("->", return_type=JSONB)(literal(key, Text))


# What `->>` makes of a value that is not a string: a number (digits, maybe a sign and a
# point: jsonb never writes exponents), true, false, or an array's or object's JSON text.
_NOT_STRING_TEXT: Final = re.compile(r"[-+.0-9\[{].*|true|false|null", re.DOTALL)


def _text_decides(items: Sequence[Scalar]) -> bool:
    """Whether comparing ``->>`` text with ``items`` is comparing the trait with them.

    True when there are items and every one is a string that no other JSON value reads as:
    then the text equals an item exactly when the trait is that string. ``"10"`` is not one
    (the number 10 reads as ``10``), nor ``"true"``, nor anything starting like an array or
    an object.
    """
    return bool(items) and all(type(item) is str and not _NOT_STRING_TEXT.fullmatch(item) for item in items)


def postgres_trait(profiles: FromClause, path: Sequence[str]) -> PostgresTrait:
    """The trait at ``path`` of the profiles row, on PostgreSQL."""
    return PostgresTrait(profiles.c.traits, path)


def sqlite_trait(profiles: FromClause, path: Sequence[str]) -> SqliteJson:
    """The trait at ``path`` of the profiles row, on SQLite."""
    traits = profiles.c.traits
    if all(_PLAIN_KEY.fullmatch(key) for key in path):
        json_path = literal("$" + "".join(f'."{key}"' for key in path), Text)
        return SqliteJson(func.json_type(traits, json_path, type_=Text), func.json_extract(traits, json_path))
    # One json_each per step, each over the previous step's value when it is an object; the
    # steps are joined (SQLite lets a table-valued function read the tables left of it).
    tables = []
    source: ColumnElement[Any] = traits
    for _key in path:
        table = func.json_each(source).table_valued("key", "type", "value")
        tables.append(table)
        source = case((table.c.type == _sql_text("object"), table.c.value), else_=_sql_text("{}"))
    joined: FromClause = tables[0]
    for table, key in zip(tables[1:], path[1:], strict=True):
        joined = joined.join(table, table.c.key == literal(key, Text))
    last = tables[-1]
    lookup = select(last.c.type).select_from(joined).where(tables[0].c.key == literal(path[0], Text))
    lookup = lookup.correlate(profiles)
    return SqliteJson(lookup.scalar_subquery(), lookup.with_only_columns(last.c.value).scalar_subquery())

r"""RE2 patterns, the subset segmentd accepts, and their PostgreSQL translation.

``MATCHES_REGEX`` runs on RE2 in Python and SQLite, and on PostgreSQL's own engine (ARE) in
membership queries. A pattern is accepted only when it means the same in both:

    pattern --RE2 compiles?--> lexical scan (escapes, groups, braces, classes)
            --Python's regex parser--> parse tree --walk--> PostgreSQL ARE text

The parse tree is only used for its structure; every node is re-emitted with RE2's meaning
(``.`` excludes ``\n``, ``\d \w \s \b`` are ASCII, ``$`` is the very end of the text), with
character classes spelled out as explicit code-point ranges so PostgreSQL's locale never matters.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import re2

from segmentd.engine.regex_case import UnfoldablePattern, fold_pattern

# Python's own regex parser (``sre_parse``) has no type stubs under its current name and
# importing the old name warns, so it is loaded dynamically and treated as untyped.
_parser: Any = importlib.import_module("re._parser")
_MAXREPEAT: Any = importlib.import_module("re._constants").MAXREPEAT

#: The deepest groups may nest; the parser and the translation recurse once per level.
MAX_GROUP_DEPTH = 100
#: PostgreSQL's RE_DUPMAX: larger bounded repetition counts are a syntax error there.
MAX_REPEAT_COUNT = 255
_MAX_CODE_POINT = 0x10FFFF
# PostgreSQL text holds neither NUL nor surrogates; character classes are emitted over the rest.
_UNIVERSE: tuple[tuple[int, int], ...] = ((1, 0xD7FF), (0xE000, _MAX_CODE_POINT))
_ALLOWED_LETTER_ESCAPES = frozenset("dDwWsSntrfvbB")  # \b \B: RE2 refuses them inside a class
_REPEAT_BRACES = re.compile(r"\{[0-9]+(,[0-9]*)?\}")
# Nodes translated to one atom (a character, a bracket or a group) take a quantifier as they are.
_ATOMS = frozenset({"LITERAL", "NOT_LITERAL", "ANY", "IN", "SUBPATTERN", "BRANCH"})
# Characters with a meaning in an ARE, outside or inside brackets; the rest stand for themselves.
_ARE_SPECIAL = frozenset("^$.[]()|*+?{}\\-")
_NAMED_ESCAPES = {0x09: "\\t", 0x0A: "\\n", 0x0B: "\\v", 0x0C: "\\f", 0x0D: "\\r"}

Ranges = list[tuple[int, int]]

# RE2's word boundaries are ASCII (\w on one side, \W or an end on the other); PostgreSQL's \y
# follows the locale, so they are spelled with look-around over the ASCII word characters.
_ASCII_WORD = "[0-9A-Za-z_]"
_ANCHORS_BY_POSITION = {
    "AT_BEGINNING": "^",
    "AT_END": "$",
    "AT_BOUNDARY": f"(?:(?<={_ASCII_WORD})(?!{_ASCII_WORD})|(?<!{_ASCII_WORD})(?={_ASCII_WORD}))",
    "AT_NON_BOUNDARY": f"(?:(?<={_ASCII_WORD})(?={_ASCII_WORD})|(?<!{_ASCII_WORD})(?!{_ASCII_WORD}))",
}

_DIGIT: Ranges = [(0x30, 0x39)]
_WORD: Ranges = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_SPACE: Ranges = [(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)]  # RE2's \s: [\t\n\f\r ], no \v


class UnsupportedPattern(ValueError):
    """The pattern is not RE2, or not in the subset that means the same in PostgreSQL."""


class RE2Pattern(Protocol):
    """The part of a compiled ``re2`` pattern segmentd uses."""

    def search(self, text: str) -> object | None:
        """Return a match object when the pattern matches somewhere in ``text``, else ``None``."""


@functools.lru_cache(maxsize=1024)
def compile_re2(pattern: str) -> RE2Pattern:
    r"""Compile ``pattern`` with RE2 (UTF-8, Perl syntax, ``.`` not matching ``\n``) to search with.

    Raises:
        UnsupportedPattern: RE2 rejects the pattern.
    """
    if "\\B" in pattern:
        # RE2 reads UTF-8 bytes, and its unanchored search may begin inside a multi-byte
        # character, where \B holds (a non-word byte on either side) though no character
        # boundary lies there; PostgreSQL looks only between characters. Begun at the start,
        # skipping whole characters, the search meets \B only between characters.
        # (An escaped backslash before a B takes the same path, harmlessly.)
        return _compile(f"^(?s:.)*?(?:{pattern})")
    return _compile(pattern)


def _compile(pattern: str) -> RE2Pattern:
    options = re2.Options()
    options.log_errors = False  # RE2 would otherwise print every rejected pattern on stderr
    try:
        compiled: RE2Pattern = re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise UnsupportedPattern(f"not a valid RE2 pattern: {reason}") from None
    except UnicodeEncodeError:
        raise UnsupportedPattern("the pattern is not valid Unicode text") from None
    return compiled


def check_pattern(pattern: str, *, ignore_case: bool) -> None:
    """Refuse a pattern RE2 rejects or whose meaning could differ in PostgreSQL.

    With ``ignore_case`` the folded pattern is checked (``effective_pattern``).

    Raises:
        UnsupportedPattern: with a human-readable reason.
    """
    pattern = effective_pattern(pattern, ignore_case=ignore_case)
    _compile(pattern)  # RE2's verdict on the pattern as written, before segmentd's own rules
    _scan(pattern)
    _translate(_parse(pattern))
    compile_re2(pattern)  # as searched: one at RE2's size limit may not take the \B form


def effective_pattern(pattern: str, *, ignore_case: bool) -> str:
    """Return the pattern every path runs: with ``ignore_case``, lower-cased as the trait is.

    Raises:
        UnsupportedPattern: lower-casing would change the pattern (``regex_case``).
    """
    if not ignore_case:
        return pattern
    try:
        return fold_pattern(pattern)
    except UnfoldablePattern as exc:
        raise UnsupportedPattern(str(exc)) from None


def to_postgres_regex(pattern: str) -> str:
    """Translate a supported RE2 pattern into a PostgreSQL ARE that matches the same texts.

    Raises:
        UnsupportedPattern: the pattern is not supported (see `check_pattern`).
    """
    compile_re2(pattern)
    _scan(pattern)
    return _translate(_parse(pattern))


def _scan(pattern: str) -> None:
    """Refuse, on the pattern's text, the constructs a parse tree no longer shows."""
    i, in_class, depth = 0, False, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            _check_escape(pattern[i + 1 : i + 2])
            i += 2
            continue
        if char == "\x00":
            raise UnsupportedPattern("a NUL character cannot be matched in PostgreSQL")
        if in_class:
            in_class = _scan_class_char(pattern, i)
        elif char == "[":
            in_class = True
            i += 1 if pattern[i + 1 : i + 2] != "^" else 2
            # A ']' right after '[' or '[^' is a literal in RE2 and Python alike.
            if pattern[i : i + 1] == "]":
                i += 1
            continue
        else:
            _scan_outside_class(pattern, i)
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth > MAX_GROUP_DEPTH:
                raise UnsupportedPattern(f"groups nest more than {MAX_GROUP_DEPTH} deep")
        i += 1


def _check_escape(escaped: str) -> None:
    if escaped.isascii() and not escaped.isalnum():
        return  # escaped punctuation is that character
    if escaped in _ALLOWED_LETTER_ESCAPES:
        return
    reasons = {
        "p": "Unicode classes (\\p{...}) are not supported",
        "P": "Unicode classes (\\P{...}) are not supported",
        "A": "use ^ instead of \\A",
        "z": "use $ instead of \\z",
        "Q": "\\Q...\\E quoting is not supported; escape each character",
        "E": "\\Q...\\E quoting is not supported; escape each character",
    }
    reason = reasons.get(
        escaped, "only \\d \\D \\w \\W \\s \\S \\b \\B \\n \\t \\r \\f \\v and escaped punctuation"
    )
    raise UnsupportedPattern(f"unsupported escape \\{escaped}: {reason}")


def _scan_class_char(pattern: str, i: int) -> bool:
    """Check one unescaped character inside ``[...]``; return whether the class goes on."""
    char = pattern[i]
    if char == "]":
        return False
    if char == "[":
        raise UnsupportedPattern("'[' inside a character class (POSIX classes, nested sets): escape it")
    if char in "-&~|" and pattern[i + 1 : i + 2] == char:
        raise UnsupportedPattern(f"{char * 2!r} inside a character class is ambiguous: escape it")
    return True


def _scan_outside_class(pattern: str, i: int) -> None:
    if pattern.startswith("(?", i) and not pattern.startswith("(?:", i):
        raise UnsupportedPattern(
            "only (...) and (?:...) groups are supported (no flags, names or look-around)"
        )
    if pattern[i] == "{" and not _REPEAT_BRACES.match(pattern, i):
        raise UnsupportedPattern("a literal '{' must be escaped as \\{")


def _parse(pattern: str) -> Any:
    try:
        tree = _parser.parse(pattern)
    except re.error as exc:
        raise UnsupportedPattern(f"not supported: {exc}") from None
    return tree


def _translate(nodes: Iterable[tuple[Any, Any]]) -> str:
    return "".join(_translate_node(op.name, argument) for op, argument in nodes)


def _translate_node(name: str, argument: Any) -> str:
    if name == "LITERAL":
        return _char(argument)
    if name == "NOT_LITERAL":
        return _bracket(_complement([(argument, argument)]))
    if name == "ANY":
        return _bracket(_complement([(0x0A, 0x0A)]))  # RE2's '.' never matches a newline
    if name == "IN":
        return _bracket(_class_ranges(argument))
    if name == "BRANCH":
        return "(?:" + "|".join(_translate(branch) for branch in argument[1]) + ")"
    if name == "SUBPATTERN":
        body = argument[3]
        if len(body) == 1 and body[0][0].name == "BRANCH":
            return _translate(body)  # the alternation brings its own group
        return "(?:" + _translate(body) + ")"
    if name in ("MAX_REPEAT", "MIN_REPEAT"):
        # Laziness changes which match is reported, never whether there is one.
        low, high, body = argument
        return _repeated(_translate(body), body, low, high)
    if name == "AT" and argument.name in _ANCHORS_BY_POSITION:
        return _ANCHORS_BY_POSITION[argument.name]
    # The scan refuses every other construct before parsing (\A, \b, look-around, ...).
    raise UnsupportedPattern(f"unsupported construct {name.lower()}")  # pragma: no cover


def _repeated(body_text: str, body: Sequence[tuple[Any, Any]], low: int, high: Any) -> str:
    unbounded = high is _MAXREPEAT
    if low > MAX_REPEAT_COUNT or (not unbounded and high > MAX_REPEAT_COUNT):
        raise UnsupportedPattern(f"repetition counts above {MAX_REPEAT_COUNT} are not supported")
    single_atom = len(body) == 1 and body[0][0].name in _ATOMS
    atom = body_text if single_atom else f"(?:{body_text})"
    if unbounded:
        quantifier = {0: "*", 1: "+"}.get(low, f"{{{low},}}")
    elif low == high:
        quantifier = f"{{{low}}}"
    else:
        quantifier = "?" if (low, high) == (0, 1) else f"{{{low},{high}}}"
    return atom + quantifier


def _class_ranges(items: Iterable[tuple[Any, Any]]) -> Ranges:
    negate, ranges = False, []
    categories = {"DIGIT": _DIGIT, "WORD": _WORD, "SPACE": _SPACE}
    for op, argument in items:
        if op.name == "NEGATE":
            negate = True
        elif op.name == "LITERAL":
            ranges.append((argument, argument))
        elif op.name == "RANGE":
            ranges.append(tuple(argument))
        else:  # CATEGORY: CATEGORY_DIGIT, CATEGORY_NOT_WORD, ...
            kind = argument.name.removeprefix("CATEGORY_")
            base = categories[kind.removeprefix("NOT_")]
            ranges.extend(_complement(base) if kind.startswith("NOT_") else base)
    return _complement(ranges) if negate else _normalized(ranges)


def _normalized(ranges: Iterable[tuple[int, int]]) -> Ranges:
    merged: Ranges = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return merged


def _complement(ranges: Iterable[tuple[int, int]]) -> Ranges:
    result, start = [], 0
    for low, high in _normalized(ranges):
        if low > start:
            result.append((start, low - 1))
        start = max(start, high + 1)
    if start <= _MAX_CODE_POINT:
        result.append((start, _MAX_CODE_POINT))
    return result


def _within_universe(ranges: Ranges) -> Ranges:
    clipped = []
    for low, high in ranges:
        for u_low, u_high in _UNIVERSE:
            if max(low, u_low) <= min(high, u_high):
                clipped.append((max(low, u_low), min(high, u_high)))
    return clipped


def _bracket(ranges: Ranges) -> str:
    """Spell a set of code points as the shorter of ``[...]`` and ``[^...]``."""
    members = _within_universe(ranges)
    outsiders = _within_universe(_complement(members))
    if not members:
        return "[^" + _ranges_text(list(_UNIVERSE)) + "]"  # matches nothing
    if outsiders and len(outsiders) < len(members):
        return "[^" + _ranges_text(outsiders) + "]"
    return "[" + _ranges_text(members) + "]"


def _ranges_text(ranges: Ranges) -> str:
    parts = []
    for low, high in ranges:
        if low == high:
            parts.append(_char(low))
        elif high == low + 1:
            parts.append(_char(low) + _char(high))
        else:
            parts.append(f"{_char(low)}-{_char(high)}")
    return "".join(parts)


def _char(code_point: int) -> str:
    """Spell one character so PostgreSQL reads it literally, inside or outside brackets."""
    char = chr(code_point)
    if char.isascii() and char.isalnum():
        return char
    if char in _ARE_SPECIAL:
        return "\\" + char  # in an ARE, backslash + non-alphanumeric is that character
    if 0x20 <= code_point < 0x7F:
        return char
    if code_point in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[code_point]
    return f"\\u{code_point:04x}" if code_point <= 0xFFFF else f"\\U{code_point:08x}"

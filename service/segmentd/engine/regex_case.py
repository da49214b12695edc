r"""Case-insensitive regular expressions: the pattern is folded as the trait is.

With ``ignore_case`` a trait ``v`` matches pattern ``P`` when ``fold_pattern(P)`` matches
``v.lower()``. Folding lower-cases every literal character of the pattern (``"^FREE"`` becomes
``"^free"``, ``"[A-Z]+"`` becomes ``"[a-z]+"``) and leaves escapes alone, so ``\D``, ``\W`` and
``\S`` keep their meaning. It is refused where lower-casing would change the pattern's structure:

    a character whose lower-case form is several characters   "İ" -> "i̇" ("İ+" would repeat the dot only)
    a class range with an upper-case end, other than within A-Z  "[À-Þ]" (write "[à-þ]")

The same folded pattern runs in every path (RE2 in Python and SQLite, its translation in
PostgreSQL), so they agree by construction.
"""

from __future__ import annotations

from typing import Final

_ASCII_UPPER: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


class UnfoldablePattern(ValueError):
    """Lower-casing the pattern would change its meaning."""


def fold_pattern(pattern: str) -> str:
    """Return ``pattern`` with every literal character lower-cased, escapes kept.

    Raises:
        UnfoldablePattern: with the reason, for the patterns the module docstring lists.
    """
    folded: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        width = 2 if char == "\\" else 1
        if in_class and pattern[i + width : i + width + 1] == "-":
            _check_range(pattern[i + width - 1], pattern[i + width + 1 : i + width + 3])
        if char == "\\":
            folded.append(pattern[i : i + 2])
        elif in_class or char != "[":
            in_class = in_class and char != "]"
            folded.append(_lower(char))
        else:
            in_class = True
            opening = 2 if pattern[i + 1 : i + 2] == "^" else 1
            # A ']' right after '[' or '[^' is a literal, as in RE2.
            width = opening + (pattern[i + opening : i + opening + 1] == "]")
            folded.append(pattern[i : i + width])
        i += width
    return "".join(folded)


def _lower(char: str) -> str:
    lower = char.lower()
    if len(lower) != 1:
        raise UnfoldablePattern(
            f"with ignore_case, {char!r} lower-cases to {len(lower)} characters: write {lower!r}"
        )
    return lower


def _check_range(low: str, after_dash: str) -> None:
    """Refuse a range ``low-high`` whose ends change case, unless it lies within A-Z."""
    high = after_dash[1:2] if after_dash.startswith("\\") else after_dash[:1]
    if high in ("", "]"):
        return  # not a range: a literal '-'
    changes = low.lower() != low or high.lower() != high
    if changes and not (low in _ASCII_UPPER and high in _ASCII_UPPER):
        raise UnfoldablePattern(
            f"with ignore_case, the range {low}-{high} cannot be lower-cased: write it in lower case"
        )

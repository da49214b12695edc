"""Semantic Versioning 2.0.0: parsing and precedence (https://semver.org).

    1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta < 1.0.0-beta.2
                < 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0 < 1.0.1 < 1.1.0 < 2.0.0

The SQL side registers `compare_semver_text` in SQLite and reimplements it in PL/pgSQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# Identifiers are matched as plain runs of [0-9A-Za-z-] separated by dots, and leading zeros
# are refused afterwards: unlike semver.org's single expression, this one cannot backtrack
# more than linearly on a long trait.
_SEMVER: Final = re.compile(
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)


@dataclass(frozen=True, slots=True)
class Semver:
    """A parsed version.

    Numeric parts are kept as their ASCII digit strings: having no leading zeros, they
    compare numerically by ``(length, digits)``, with no limit on their size (Python refuses
    to convert integers of more than 4300 digits).

    Attributes:
        major: the major version, digits.
        minor: the minor version, digits.
        patch: the patch version, digits.
        prerelease: the dot-separated pre-release identifiers; empty for a release.
        build: the build metadata after ``+``; ignored by precedence.
    """

    major: str
    minor: str
    patch: str
    prerelease: tuple[str, ...] = ()
    build: str = ""


def parse_semver(text: str) -> Semver | None:
    """Parse ``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]``; ``None`` if ``text`` is not one.

    No leading ``v``, no surrounding spaces, no leading zeros in numeric identifiers
    (``1.02.0`` and ``1.0.0-01`` are not versions; ``1.0.0-0a`` is, ``0a`` being alphanumeric).
    """
    match = _SEMVER.fullmatch(text)
    if match is None:
        return None
    major, minor, patch, prerelease, build = match.groups()
    identifiers = tuple(prerelease.split(".")) if prerelease else ()
    if any(_is_numeric(part) and len(part) > 1 and part[0] == "0" for part in identifiers):
        return None
    return Semver(major, minor, patch, identifiers, build or "")


def compare_semver(a: Semver, b: Semver) -> int:
    """Compare two versions by precedence: -1 if ``a < b``, 0 if equal, 1 if ``a > b``.

    Major, minor and patch compare numerically; then a version without pre-release is higher
    than one with; then pre-release identifiers compare left to right (numeric ones
    numerically, alphanumeric ones by ASCII, numeric lower than alphanumeric), and when all
    shared ones are equal the longer list is higher. Build metadata is ignored.
    """
    for x, y in ((a.major, b.major), (a.minor, b.minor), (a.patch, b.patch)):
        if x != y:
            return _compare_numeric(x, y)
    if not a.prerelease or not b.prerelease:
        # A release outranks any pre-release of the same core version.
        return _sign(bool(b.prerelease) - bool(a.prerelease))
    for x, y in zip(a.prerelease, b.prerelease, strict=False):
        if x != y:
            return _compare_identifier(x, y)
    return _sign(len(a.prerelease) - len(b.prerelease))


def compare_semver_text(a: str, b: str) -> int | None:
    """Compare two version strings as `compare_semver`; ``None`` if either is not a version."""
    left, right = parse_semver(a), parse_semver(b)
    if left is None or right is None:
        return None
    return compare_semver(left, right)


def _is_numeric(identifier: str) -> bool:
    # The expression only lets ASCII through, so isdigit cannot meet other digits here.
    return identifier.isdigit()


def _compare_numeric(x: str, y: str) -> int:
    """Compare two different digit strings without leading zeros, numerically."""
    return -1 if (len(x), x) < (len(y), y) else 1


def _compare_identifier(x: str, y: str) -> int:
    """Compare two different pre-release identifiers."""
    x_numeric, y_numeric = _is_numeric(x), _is_numeric(y)
    if x_numeric and y_numeric:
        return _compare_numeric(x, y)
    if x_numeric != y_numeric:
        return -1 if x_numeric else 1
    return -1 if x < y else 1


def _sign(number: int) -> int:
    return (number > 0) - (number < 0)

"""Aligned text tables and number formats for the command line's figures."""

from __future__ import annotations

from collections.abc import Sequence


def table(header: Sequence[str], rows: Sequence[Sequence[str]], *, names: int = 1) -> list[str]:
    """Return ``header`` and ``rows`` as lines, columns two spaces apart, numbers right-aligned.

    The first ``names`` columns are left-aligned (names), the others right-aligned (figures).
    """
    every = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(row[i]) for row in every) for i in range(len(header))]
    return [
        "  ".join(
            cell.ljust(width) if i < names else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in every
    ]


def format_number(value: float | None) -> str:
    """A figure for people: ``-`` when it does not exist, integers as such, else 2 decimals.

    Values too small for 2 decimals keep 3 significant digits (``0.00123``).
    """
    if value is None:
        return "-"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) >= 0.01 or abs(value) >= 1e15 else f"{value:.3g}"


def format_share(share: float) -> str:
    """A share as a percentage with one decimal: ``0.1234`` -> ``12.3%``."""
    return f"{share * 100:.1f}%"

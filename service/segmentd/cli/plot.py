"""SVG plots of segment figures with matplotlib (the ``plot`` extra; import fails without it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("svg")  # no display needed, whatever the environment says

from matplotlib import pyplot


def draw(path: Path, bars: Sequence[tuple[str, int, float | None]], trait: str | None) -> None:
    """Draw member counts per label as bars and, if ``trait``, its mean per label on a second axis.

    Args:
        path: the SVG file written.
        bars: (label, member count, the trait's mean or None) per bar.
        trait: the trait whose mean is drawn; None draws the counts only.
    """
    labels = [label for label, _, _ in bars]
    positions = range(len(bars))
    figure, counts = pyplot.subplots(figsize=(max(6.0, 0.8 * len(bars) + 2), 4.5))
    try:
        counts.bar(positions, [count for _, count, _ in bars], color="#4c72b0", label="members")
        counts.set_ylabel("members")
        counts.set_xticks(list(positions), labels, rotation=30, ha="right")
        if trait is not None:
            means = counts.twinx()
            means.plot(
                positions, [float("nan") if m is None else m for _, _, m in bars], "o-", color="#dd8452"
            )
            means.set_ylabel(f"mean {trait}")
        figure.tight_layout()
        figure.savefig(path, format="svg")
    finally:
        pyplot.close(figure)

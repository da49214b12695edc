"""`segmentd stats | compare` against a real server: aligned tables, JSON, plots."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from segmentd.cli.common import EXIT_INVALID, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE
from segmentd.cli.tables import format_number, table
from tests.cli.conftest import Segmentd

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


@pytest.fixture
async def loaded(segmentd: Segmentd) -> Segmentd:
    """The example segments and profiles."""
    assert (await segmentd("apply", "-f", str(EXAMPLES / "segments"))).status == EXIT_OK
    assert (await segmentd("import", str(EXAMPLES / "profiles.csv"))).status == EXIT_OK
    return segmentd


async def test_stats__traits_and_groups__aligned_tables(loaded: Segmentd) -> None:
    # When
    result = await loaded(
        "stats", "free-plan", "--trait", "nps", "--trait", "seats_used_pct", "--group-by", "plan"
    )
    # Then
    assert result.status == EXIT_OK
    lines = result.out.splitlines()
    assert lines[0] == "free-plan (v1): 4 of 5 profiles (80.0%)"
    assert lines[2].split() == [
        "TRAIT",
        "COUNT",
        "SUM",
        "MEAN",
        "MIN",
        "P50",
        "P90",
        "MAX",
        "SHARE",
        "OF",
        "SUM",
    ]
    assert lines[3].split() == ["nps", "4", "24", "6", "2", "3", "10", "10", "77.4%"]
    assert lines[6].split()[:2] == ["PLAN", "MEMBERS"]
    assert [line.split()[:2] for line in lines[7:]] == [["free", "3"], ["FREE", "1"]]


async def test_compare__sizes_and_overlaps(loaded: Segmentd) -> None:
    # When
    result = await loaded("compare", "free-plan", "detractors", "promoters", "--trait", "nps")
    document = json.loads((await loaded("compare", "free-plan", "detractors", "-o", "json")).out)
    # Then
    assert result.status == EXIT_OK
    lines = result.out.splitlines()
    assert lines[0].split() == ["SEGMENT", "MEMBERS", "SHARE", "MEAN", "nps"]
    assert lines[1].split() == ["free-plan", "4", "80.0%", "6"]
    assert lines[5].split() == ["A", "B", "BOTH", "ONLY", "A", "ONLY", "B"]
    assert lines[6].split() == ["free-plan", "detractors", "2", "2", "0"]
    assert document["overlaps"] == [
        {"a": "free-plan", "b": "detractors", "both": 2, "only_a": 2, "only_b": 0}
    ]


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (("compare", "free-plan"), EXIT_INVALID),
        (("compare", "free-plan", "nope"), EXIT_NOT_FOUND),
        (("stats", "nope"), EXIT_NOT_FOUND),
        (("stats", "free-plan", "--trait", "a..b"), EXIT_INVALID),
    ],
)
async def test_stats_and_compare__bad_input__exit_status(
    loaded: Segmentd, args: tuple[str, ...], status: int
) -> None:
    result = await loaded(*args)
    assert result.status == status
    # The command's own one-line error; the in-process server's access log may write around it.
    assert [line for line in result.err.splitlines() if line.startswith("segmentd: ")]
    assert "Traceback" not in result.err


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="the plot extra is not installed")
async def test_stats_and_compare__plot__svg_written(loaded: Segmentd, tmp_path: Path) -> None:
    # When
    grouped = await loaded(
        "stats", "free-plan", "--trait", "nps", "--group-by", "plan", "--plot", str(tmp_path / "a.svg")
    )
    compared = await loaded("compare", "free-plan", "promoters", "--plot", str(tmp_path / "b.svg"))
    # Then
    assert (grouped.status, compared.status) == (EXIT_OK, EXIT_OK)
    for name in ("a.svg", "b.svg"):
        assert (tmp_path / name).read_text().lstrip().startswith("<?xml")
    assert "wrote" in grouped.err


async def test_stats__plot_without_matplotlib__clear_error(
    loaded: Segmentd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: matplotlib cannot be imported (None in sys.modules makes the import fail)
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    monkeypatch.delitem(__import__("sys").modules, "segmentd.cli.plot", raising=False)
    # When
    result = await loaded("stats", "free-plan", "--plot", str(tmp_path / "a.svg"))
    # Then
    assert result.status == EXIT_USAGE
    assert "--plot needs matplotlib" in result.err
    assert not (tmp_path / "a.svg").exists()


def test_table__first_column_left_numbers_right() -> None:
    assert table(("NAME", "N"), [("a", "1"), ("longer", "100")]) == [
        "NAME      N",
        "a         1",
        "longer  100",
    ]
    assert [format_number(v) for v in (None, 3.0, 2.5, 1234567.891, 0.00123)] == [
        "-",
        "3",
        "2.50",
        "1,234,567.89",
        "0.00123",
    ]

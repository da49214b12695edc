"""``segmentd demo`` and ``segmentd events prune`` on an embedded store file."""

from __future__ import annotations

from pathlib import Path

import pytest

from segmentd.cli import main


def test_demo__then_prune__report_what_they_did(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    # When
    assert main(["demo", "--database-url", url, "--profiles", "200"]) == 0
    seeded = capsys.readouterr().out
    assert main(["events", "prune", "--database-url", url, "--retention-days", "7", "--dry-run"]) == 0
    planned = capsys.readouterr().out
    assert main(["events", "prune", "--database-url", url, "--retention-days", "7"]) == 0
    pruned = capsys.readouterr().out
    assert main(["events", "prune", "--database-url", url, "--retention-days", "7", "--dry-run"]) == 0
    # Then: the dry run counts what the prune then removes, and nothing is left after it
    assert "created at-risk" in seeded and "seeded 200 profiles" in seeded and "segmentd serve" in seeded
    assert pruned.startswith("removed ") and int(pruned.split()[1]) > 0
    assert planned.startswith("would remove ") and planned.split()[2] == pruned.split()[1]
    assert capsys.readouterr().out.startswith("would remove 0 event day rows before")
    assert main(["events", "prune", "--database-url", url, "--retention-days", "0"]) == 0
    assert "nothing to prune" in capsys.readouterr().out


def test_demo__store_with_other_data__refused_with_conflict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    other = tmp_path / "other-segments"
    other.mkdir()
    (other / "x.yaml").write_text("name: other\nrule: {all: {rules: []}}\n")
    assert main(["demo", "--database-url", url, "--profiles", "10", "--library", str(other)]) == 0
    capsys.readouterr()
    # When: the starter library does not hold 'other'
    status = main(["demo", "--database-url", url, "--profiles", "10"])
    # Then
    assert status == 5
    assert "--force" in capsys.readouterr().err
    assert main(["demo", "--database-url", url, "--profiles", "10", "--force"]) == 0

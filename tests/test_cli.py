"""The `segmentd` command line: migrate, and errors in settings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from segmentd.cli import main
from segmentd.store.migrate import current_revision, head_revision


def test_migrate__fresh_sqlite_file__at_head(tmp_path: Path, capsys):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"

    assert main(["migrate", "--database-url", url]) == 0

    assert asyncio.run(current_revision(url)) == head_revision()
    assert "migrated" in capsys.readouterr().out


def test_serve__malformed_environment__exit_2_naming_the_variable(monkeypatch, capsys):
    monkeypatch.setenv("SEGMENTD_PORT", "eighty")
    assert main(["serve"]) == 2
    assert "SEGMENTD_PORT" in capsys.readouterr().err


def test_serve__malformed_flag__usage_error():
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", "eighty"])
    assert exited.value.code == 2

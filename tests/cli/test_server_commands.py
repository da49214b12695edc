"""`segmentd serve` and `segmentd migrate`: migrations, settings from flags and environment."""

from __future__ import annotations

import asyncio
import socket
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


def test_serve__one_option_per_setting__generated_from_the_dataclass():
    from dataclasses import fields

    from segmentd.cli.server import serve
    from segmentd.config import Settings

    options = {name for parameter in serve.params for name in [*parameter.opts, *parameter.secondary_opts]}
    for setting in fields(Settings):
        flag = "--" + setting.name.replace("_", "-")
        assert flag in options
        if setting.type == "bool":
            assert "--no-" + setting.name.replace("_", "-") in options


def test_serve__flag_wins_over_environment_over_default(monkeypatch):
    from segmentd.cli.server import _settings

    monkeypatch.setenv("SEGMENTD_PORT", "7000")
    monkeypatch.setenv("SEGMENTD_MIGRATE", "off")
    assert _settings({"port": None, "migrate": None}).port == 7000
    assert _settings({"port": 6000, "migrate": True}).port == 6000
    assert _settings({"port": None, "migrate": True}).migrate is True
    assert _settings({"port": None, "migrate": None}).migrate is False
    monkeypatch.delenv("SEGMENTD_PORT")
    assert _settings({}).port == 50051


def test_serve__secret_default_kept_out_of_help(capsys):
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--page-token-secret" in out and "segmentd-default-page-token-key" not in out


def test_migrate__url_with_a_password__printed_masked(store_url: str, capsys):
    if not store_url.startswith("postgresql"):
        pytest.skip("a SQLite URL holds no password")
    from sqlalchemy.engine import make_url

    # The local server trusts its clients, so the password is sent nowhere but the output.
    url = make_url(store_url).set(password="S3cret-pw").render_as_string(hide_password=False)

    assert main(["migrate", "--database-url", url]) == 0

    out = capsys.readouterr().out
    assert "S3cret-pw" not in out and "***" in out


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:pw1@db:5432/segments", "postgresql://app:***@db:5432/segments"),
        (
            "postgresql://app@db/segments?password=pw1&sslmode=require",
            "postgresql://app@db/segments?password=***&sslmode=require",
        ),
        ("postgresql://app@db/segments?sslpassword=pw1", "postgresql://app@db/segments?sslpassword=***"),
        ("sqlite:///segmentd.db", "sqlite:///segmentd.db"),
        ("not a url :pw1@", "the database"),
    ],
)
def test_shown_url__passwords_in_the_user_part_or_the_query__masked(url: str, shown: str):
    from segmentd.store.database import shown_url

    assert shown_url(url) == shown


@pytest.mark.parametrize("command", [["migrate"], ["demo"], ["events", "prune"], ["serve", "--port", "0"]])
def test_store_commands__database_unreachable__one_line_and_exit_3(command: list[str], capsys):
    from segmentd.cli.common import EXIT_UNREACHABLE

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://postgres@127.0.0.1:{port}/nowhere"

    assert main([*command, "--database-url", url]) == EXIT_UNREACHABLE

    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == "segmentd: cannot reach the database: database unavailable"

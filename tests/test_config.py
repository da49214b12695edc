"""Settings from flags, SEGMENTD_* variables and defaults."""

from __future__ import annotations

import argparse

import pytest

from segmentd.config import DEFAULT_DATABASE_URL, Settings, add_arguments, load_settings


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_load_settings__nothing_given__defaults():
    settings = load_settings(_parse([]), environ={})
    assert settings == Settings()
    assert settings.database_url == DEFAULT_DATABASE_URL


def test_load_settings__environment__typed_values():
    environ = {
        "SEGMENTD_PORT": "6000",
        "SEGMENTD_MIGRATE": "off",
        "SEGMENTD_PROFILE_CACHE_TTL_SECONDS": "0.5",
    }
    settings = load_settings(_parse([]), environ=environ)
    assert (settings.port, settings.migrate, settings.profile_cache_ttl_seconds) == (6000, False, 0.5)


def test_load_settings__flag_wins_over_environment():
    settings = load_settings(_parse(["--port", "7000", "--no-migrate"]), environ={"SEGMENTD_PORT": "6000"})
    assert (settings.port, settings.migrate) == (7000, False)


@pytest.mark.parametrize(("variable", "value"), [("SEGMENTD_PORT", "eighty"), ("SEGMENTD_MIGRATE", "maybe")])
def test_load_settings__malformed_variable__error_names_it(variable, value):
    with pytest.raises(ValueError, match=variable):
        load_settings(None, environ={variable: value})


def test_rule_limits__follow_the_settings():
    limits = Settings(max_rule_depth=4, max_rule_nodes=9, max_regex_length=10, max_list_values=3).rule_limits
    assert (limits.max_depth, limits.max_nodes, limits.max_regex_length, limits.max_list_values) == (
        4,
        9,
        10,
        3,
    )


def test_page_token_secret__not_in_help_or_repr():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert Settings().page_token_secret not in parser.format_help()
    assert Settings().page_token_secret not in repr(Settings())

"""``segmentd profile get|set`` and ``segmentd events record``, through the typed client."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any, Final

import click

from segmentd.cli.common import EXIT_INVALID, EXIT_OK, EXIT_USAGE, client_command, echo_json, fail
from segmentd.import_formats import TOO_DEEP
from segmentd_client import Client, Event


@click.group()
def profile() -> None:
    """Read and write user profiles (traits).

    \b
    Example:
      segmentd profile set user-42 --traits '{"plan": "free", "seats_used_pct": 92}'
      segmentd profile get user-42
    """


@profile.command(name="get")
@click.argument("user_id")
@client_command
def get_profile(user_id: str, client: Client) -> int:
    """Print a user's profile as JSON.

    \b
    Example:
      segmentd profile get user-42
    """
    echo_json(dataclasses.asdict(client.get_profile(user_id)))
    return EXIT_OK


@profile.command(name="set")
@click.argument("user_id")
@click.option("--traits", "traits_json", required=True, metavar="JSON", help="A JSON object of traits.")
@click.option("--replace", is_flag=True, help="Replace all stored traits instead of merging.")
@client_command
def set_profile(user_id: str, traits_json: str, replace: bool, client: Client) -> int:
    """Create or update a profile: merge the traits into the stored ones (null deletes a key).

    \b
    Example:
      segmentd profile set user-42 --traits '{"plan": "pro", "trial_ends": null}'
      segmentd profile set user-42 --traits '{"plan": "free"}' --replace
    """
    echo_json(dataclasses.asdict(client.upsert_profile(user_id, _object(traits_json), replace=replace)))
    return EXIT_OK


def _object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        fail(EXIT_USAGE, f"--traits: not valid JSON: {exc}")
    except RecursionError:
        fail(EXIT_INVALID, f"--traits: {TOO_DEEP}")
    if not isinstance(value, dict):
        fail(EXIT_USAGE, "--traits: must be a JSON object")
    return value


@click.group()
def events() -> None:
    """Record what users did (events are counted per user, per name, per day).

    \b
    Example:
      segmentd events record user-42 invite_sent --count 3
    """


@events.command()
@click.argument("user_id")
@click.argument("name")
@click.option("--count", type=click.IntRange(min=1), default=1, show_default=True, help="How many times.")
@click.option(
    "--time", "when", metavar="RFC3339", default=None, help="When (default: now), e.g. 2026-11-30T09:00:00Z."
)
@client_command
def record(user_id: str, name: str, count: int, when: str | None, client: Client) -> int:
    """Record that a user did NAME, COUNT times (the user must have a profile).

    \b
    Example:
      segmentd events record user-42 login
      segmentd events record user-42 invite_sent --count 3 --time 2026-11-30T09:00:00Z
    """
    recorded = client.record_events([Event(user_id, name, count, _time(when))])
    click.echo(f"recorded {recorded} event{'' if recorded == 1 else 's'}")
    return EXIT_OK


def _time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(EXIT_USAGE, f"--time {text!r}: not an RFC 3339 time (e.g. 2026-11-30T09:00:00Z)")
    if moment.tzinfo is None:
        fail(EXIT_USAGE, f"--time {text!r}: needs a UTC offset (Z or +01:00)")
    return moment.astimezone(UTC)


COMMANDS: Final = (profile, events)

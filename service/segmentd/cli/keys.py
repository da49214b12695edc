"""``segmentd keys create | list | revoke``: API keys, written straight to the service's database.

These commands talk to the database, not to a server: they are how the first key exists
before any server accepts calls, and they need the same ``--database-url`` as ``serve``
(and apply pending migrations first, as ``serve`` does). A key is printed once, on the last
line of ``create``'s output; the store keeps only its SHA-256.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Final, TypeVar

import click

from segmentd.cli.common import EXIT_NOT_FOUND, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, echo_json, fail
from segmentd.config import DEFAULT_DATABASE_URL, Settings
from segmentd.errors import StoreUnavailable
from segmentd.security.keys import key_hash, new_key
from segmentd.security.scopes import SCOPES, unknown_scopes
from segmentd.store.api_keys import ApiKeyNotFound, ApiKeyRecord, ApiKeyRepository
from segmentd.store.database import create_engine, create_sessionmaker
from segmentd.store.migrate import migrate

_T = TypeVar("_T")

_DATABASE_URL = click.option(
    "--database-url",
    envvar="SEGMENTD_DATABASE_URL",
    default=DEFAULT_DATABASE_URL,
    show_default=True,
    help="The service's database (env SEGMENTD_DATABASE_URL).",
)


def _run(database_url: str, action: Callable[[ApiKeyRepository], Awaitable[_T]]) -> _T:
    async def run() -> _T:
        try:
            engine = create_engine(database_url)
        except ValueError as exc:
            fail(EXIT_USAGE, str(exc))
        try:
            await migrate(engine)
            return await action(ApiKeyRepository(create_sessionmaker(engine)))
        except StoreUnavailable as exc:
            fail(EXIT_UNREACHABLE, f"cannot reach the database: {exc}")
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _scopes(given: tuple[str, ...]) -> frozenset[str]:
    # --scope read --scope evaluate, or --scope read,evaluate: both are natural to type.
    scopes = [scope for value in given for scope in value.replace(",", " ").split()]
    unknown = unknown_scopes(scopes)
    if unknown or not scopes:
        fail(EXIT_USAGE, f"unknown scope {', '.join(map(repr, unknown))}; choose from {', '.join(SCOPES)}")
    return frozenset(scopes)


@click.command()
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    help=f"A scope the key grants (repeatable): {', '.join(SCOPES)}.",
)
@click.option("--description", default="", help="Who or what the key is for.")
@_DATABASE_URL
def create(scopes: tuple[str, ...], description: str, database_url: str) -> int:
    """Create an API key; print it once, on the last line.

    \b
    Example:
      segmentd keys create --scope evaluate --description "checkout service"
      KEY=$(segmentd keys create --scope read --scope evaluate | tail -n 1)
    """
    granted = _scopes(scopes)
    key_id, key = new_key()
    record = ApiKeyRecord(key_id, key_hash(key), granted, description, datetime.now(UTC))
    _run(database_url, lambda keys: keys.create(record))
    click.echo(f"created API key {key_id} (scopes: {' '.join(sorted(granted))})")
    click.echo("the key is shown only this once; the server keeps its hash, not the key:")
    click.echo(key)
    return EXIT_OK


@click.command(name="list")
@click.option(
    "-o", "--output", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@_DATABASE_URL
def list_keys(output_format: str, database_url: str) -> int:
    """List API keys (ids, scopes, times; never the keys), revoked ones included.

    \b
    Example:
      segmentd keys list
      segmentd keys list -o json
    """
    records = _run(database_url, lambda keys: keys.list())
    if output_format == "json":
        echo_json([_document(record) for record in records])
        return EXIT_OK
    for record in records:
        state = "revoked " + _time(record.revoke_time) if record.revoke_time else "valid"
        click.echo(
            f"{record.key_id}  {' '.join(sorted(record.scopes)):<40}  created {_time(record.create_time)}"
            f"  {state}  {record.description}".rstrip()
        )
    return EXIT_OK


@click.command()
@click.argument("key_id")
@_DATABASE_URL
def revoke(key_id: str, database_url: str) -> int:
    """Revoke an API key by its id; every server refuses it within --auth-cache-seconds.

    \b
    Example:
      segmentd keys revoke 3f9a1c0b2d4e
    """

    async def revoke_key(keys: ApiKeyRepository) -> ApiKeyRecord:
        try:
            return await keys.revoke(key_id)
        except ApiKeyNotFound as exc:
            fail(EXIT_NOT_FOUND, str(exc))

    record = _run(database_url, revoke_key)
    click.echo(
        f"revoked {record.key_id} at {_time(record.revoke_time)}; servers refuse it within their "
        f"--auth-cache-seconds ({Settings().auth_cache_seconds:g}s unless set), on PostgreSQL "
        "as soon as the change is notified to them"
    )
    return EXIT_OK


def _time(time: datetime | None) -> str:
    return "" if time is None else time.isoformat(timespec="seconds").replace("+00:00", "Z")


def _document(record: ApiKeyRecord) -> dict[str, object]:
    return {
        "key_id": record.key_id,
        "scopes": sorted(record.scopes),
        "description": record.description,
        "create_time": record.create_time,
        "revoke_time": record.revoke_time,
    }


@click.group()
def keys() -> None:
    """Create, list and revoke API keys (serve --require-auth checks them).

    \b
    Example:
      segmentd keys create --scope evaluate --description "checkout service"
    """


for _command in (create, list_keys, revoke):
    keys.add_command(_command)

COMMANDS: Final = (keys,)

"""EXPERIMENTS ONLY: ``segmentd serve`` with what-if patches, to measure proposed changes.

    SEGMENTD_WHAT_IF=raw-stream,and-guards uv run python bench/membership.py --reuse --keep \\
        --server-command "$(pwd)/.venv/bin/python bench/what_if_serve.py"

``SEGMENTD_WHAT_IF`` lists the patches (comma-separated) applied before the server starts:

``raw-stream``
    ``MemberQueries.stream`` reads the ids through the raw asyncpg cursor (``fetch(chunk)``),
    without SQLAlchemy's result layer (PostgreSQL only; the query is the same).
``and-guards``
    the type guards of number comparisons become ``guard AND test`` instead of
    ``CASE WHEN guard THEN test ELSE false END``. NOT a correct implementation: the result is
    NULL for a missing trait, which a ``none`` group around the condition would get wrong. It
    only measures what the ``CASE`` costs on rules that do not negate those conditions (the
    benchmark's segments), whose results the benchmark still checks against the baseline.
``chunk=N``
    ``MemberQueries`` fetches and sends ``N`` ids at a time instead of ``DEFAULT_CHUNK_SIZE``.

Never use this to serve anything.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import ColumnElement, and_, select

import segmentd.sqlgen.conditions as conditions
import segmentd.store.members as members
from segmentd.cli import main
from segmentd.store.database import unavailable_as_store_error

_ORIGINAL_STREAM = members.MemberQueries.stream


async def _raw_stream(
    self: members.MemberQueries,
    condition: ColumnElement[bool],
    *,
    after_user_id: str = "",
    limit: int | None = None,
) -> AsyncIterator[list[str]]:
    if self.dialect != "postgresql":
        async for chunk in _ORIGINAL_STREAM(self, condition, after_user_id=after_user_id, limit=limit):
            yield chunk
        return
    user_id = self.profiles.c.user_id
    query = select(user_id).where(condition).order_by(user_id).limit(limit)
    if after_user_id:
        query = query.where(user_id > after_user_id)
    chunk_size: int = self._chunk_size
    with unavailable_as_store_error():
        async with self._engine.connect() as connection:
            compiled = query.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
            arguments = []
            for name in compiled.positiontup or ():
                value = compiled.params[name]
                process = compiled.binds[name].type.bind_processor(connection.dialect)
                arguments.append(process(value) if process else value)
            raw: Any = (await connection.get_raw_connection()).driver_connection
            async with raw.transaction(readonly=True):
                cursor = await raw.cursor(compiled.string, *arguments)
                while rows := await cursor.fetch(chunk_size):
                    yield [row[0] for row in rows]


def _and_guard(guard: ColumnElement[bool], test: ColumnElement[bool]) -> ColumnElement[bool]:
    return and_(guard, test)


def apply(patches: list[str]) -> None:
    for patch in patches:
        if patch == "raw-stream":
            setattr(members.MemberQueries, "stream", _raw_stream)  # noqa: B010 - mypy refuses method assignment
        elif patch == "and-guards":
            setattr(conditions, "when", _and_guard)  # noqa: B010
        elif patch.startswith("chunk="):
            setattr(members.MemberQueries.__init__, "__defaults__", (int(patch.removeprefix("chunk=")),))  # noqa: B010
        else:
            raise SystemExit(f"what_if_serve: unknown patch {patch!r}")


if __name__ == "__main__":
    chosen = [patch for patch in os.environ.get("SEGMENTD_WHAT_IF", "").split(",") if patch]
    apply(chosen)
    print(f"what_if_serve: patches {chosen or 'none'}", file=sys.stderr, flush=True)
    sys.exit(main(sys.argv[1:]))

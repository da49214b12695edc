"""Record the SQL a store runs, the SQLite point-operation threads' statements included."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.store.sqlite_inline import SqliteInline


def statement_sources(engine: AsyncEngine) -> list[Engine]:
    """The synchronous engines whose cursors run ``engine``'s statements."""
    inline = SqliteInline.for_engine(engine)
    return [engine.sync_engine, *(inline.engines if inline is not None else ())]


@contextmanager
def recorded_statements(engine: AsyncEngine, *, with_begin: bool = False) -> Iterator[list[str]]:
    """Collect each statement run for ``engine`` inside the block (SQLite's BEGINs left out)."""
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if with_begin or statement not in ("BEGIN", "BEGIN IMMEDIATE"):
            statements.append(statement)

    sources = statement_sources(engine)
    for source in sources:
        event.listen(source, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for source in sources:
            event.remove(source, "before_cursor_execute", record)

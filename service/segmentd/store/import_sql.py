"""The SQL of the bulk import (``segmentd.store.importer``), for PostgreSQL and SQLite.

STAGING                       TEMP segmentd_import_staging(seq, user_id, traits[, deleted])
postgresql_upsert(replace)    INSERT … DISTINCT ON (user_id) … ON CONFLICT DO UPDATE merge [WHERE it fits]
postgresql_remerge_over_bound UPDATE … the merges the guard left, RETURNING them for the exact check
sqlite_upsert(replace)        INSERT … SELECT <row_number() = 1> … segmentd_merge_traits(stored, sent) …
oversized_query()             SQLite: the users of the import whose stored traits are now over 64 KiB
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Insert,
    LargeBinary,
    Select,
    Subquery,
    Text,
    Update,
    cast,
    column,
    func,
    literal,
    literal_column,
    select,
    table,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from segmentd.store.checks import MAX_TRAITS_BYTES
from segmentd.store.models import JsonDocument, ProfileRow, profiles_table
from segmentd.store.profiles import merge_traits

STAGING_NAME: Final = "segmentd_import_staging"
MERGE_FUNCTION: Final = "segmentd_merge_traits"
STAGING = table(
    STAGING_NAME, column("seq"), column("user_id", Text), column("traits", JsonDocument), column("deleted")
)
# The staged user ids sort and compare as ``profiles.user_id`` does (byte order, migration 0006):
# in another collation the merge's lookup of a user's staged row could not use the staging index
# (an index serves comparisons in its own collation only) and scanned the staging table once
# per updated profile, and the sort would not follow the primary key's order.
POSTGRESQL_DDL: Final = (
    f'CREATE TEMP TABLE {STAGING_NAME} (seq bigint NOT NULL, user_id text COLLATE "C" NOT NULL,'
    " traits jsonb NOT NULL, deleted text[] NOT NULL) ON COMMIT DROP"
)
#: Run once the staging table is filled. Temporary tables are never analysed automatically:
#: without it the planner guesses. The plans depend on the keys only; the statistics of the
#: traits (jsonb values compared with each other) would cost most of the ANALYZE.
POSTGRESQL_STAGING_INDEX: Final = (
    f"CREATE INDEX ON {STAGING_NAME} (user_id, seq)",
    f"ANALYZE {STAGING_NAME} (user_id, seq)",
)
SQLITE_DDL: Final = (
    f"CREATE TEMP TABLE {STAGING_NAME} (seq INTEGER NOT NULL, user_id TEXT NOT NULL, traits TEXT NOT NULL)"
)


def merge_traits_sql(
    stored: ColumnElement[Any], sent: ColumnElement[Any], deleted_keys: ColumnElement[Any]
) -> ColumnElement[Any]:
    """Return PostgreSQL's ``(stored - deleted_keys) || sent``: ``merge_traits`` for jsonb.

    ``sent`` holds the sent traits without their null keys, and ``deleted_keys`` (a
    ``text[]``) those keys.
    """
    kept = stored.op("-", return_type=postgresql.JSONB())(deleted_keys)
    return kept.op("||", return_type=postgresql.JSONB())(sent)


#: The longest text form (``jsonb::text``) that surely measures within ``MAX_TRAITS_BYTES`` as
#: the compact JSON ``checks.check_traits_size`` measures. The text form is mostly the longer
#: (a space after every separator), but a double of 1e16 or more is written back by Python in
#: its exponent form (``1.2345678901234568e+16``, 22 bytes, ``json_numbers``) where PostgreSQL
#: writes the digits (``12345678901234568``, 17): in an array of those an element takes 23 bytes
#: compact against 19 as text, the highest ratio any value reaches, plus one byte at most for the
#: outermost brackets.
SURELY_WITHIN_LIMIT_TEXT_BYTES: Final = (MAX_TRAITS_BYTES - 1) * 19 // 23
#: The number of distinct users staged: what an upsert that wrote every one of them counts.
STAGED_USERS: Final = f"SELECT count(DISTINCT user_id) FROM {STAGING_NAME}"


def oversized_query() -> Select[tuple[Any, Any]]:
    """SQLite: (last position, stored traits) of the import's users whose traits are too large.

    The merge function writes compact JSON, so its length is the size checked; the caller
    checks each one with ``checks.check_traits_size`` all the same, for its message.
    """
    last_seq = (
        select(func.max(STAGING.c.seq)).where(STAGING.c.user_id == ProfileRow.user_id).scalar_subquery()
    )
    return select(last_seq, ProfileRow.traits).where(
        ProfileRow.user_id.in_(select(STAGING.c.user_id)),
        func.length(cast(ProfileRow.traits, LargeBinary)) > MAX_TRAITS_BYTES,
    )


def _latest_staged() -> Subquery:
    """The last staged row of each user (a later position wins)."""
    return (
        select(STAGING.c.user_id, STAGING.c.seq, STAGING.c.traits, STAGING.c.deleted)
        .ext(postgresql.distinct_on(STAGING.c.user_id))
        .order_by(STAGING.c.user_id, STAGING.c.seq.desc())
        .subquery()
    )


def _surely_fits(stored: ColumnElement[Any], sent: ColumnElement[Any]) -> ColumnElement[bool]:
    """The guard's bound (``postgresql_upsert``): the two text forms together within the threshold."""
    length = func.octet_length(cast(stored, Text)) + func.octet_length(cast(sent, Text))
    return length <= SURELY_WITHIN_LIMIT_TEXT_BYTES


def postgresql_remerge_over_bound(now: datetime) -> Update:
    """Merge again every staged user whose stored and sent traits are over the guard's bound.

    Run after the guarded upsert, with its ``now``, it writes the merges that one left, and
    returns (last position, merged traits) of each user it wrote, for the exact check. A merge
    is idempotent: a user the guarded upsert wrote comes out with the same traits and times.
    """
    latest = _latest_staged()
    stored = profiles_table.c.traits
    return (
        update(ProfileRow)
        .values(traits=merge_traits_sql(stored, latest.c.traits, latest.c.deleted), update_time=_now(now)[0])
        .where(profiles_table.c.user_id == latest.c.user_id, ~_surely_fits(stored, latest.c.traits))
        .returning(latest.c.seq, profiles_table.c.traits)
    )


def postgresql_upsert(replace: bool, *, guarded: bool = False, now: datetime | None = None) -> Insert:
    """The upsert of the last staged profile of each user: merged in the ``DO UPDATE``, or replacing.

    ``guarded`` (a merge): the ``DO UPDATE`` writes a merge only if the stored and the sent
    traits' text forms together are within ``SURELY_WITHIN_LIMIT_TEXT_BYTES``. Their sum bounds
    the merge's text form (each of its members is one of theirs, and two objects' braces pay for
    the separator that joins their members), so every row written is known to fit without
    reading it again, and the statement's row count falls short of the staged users when a
    merge was left unwritten. A bound, not the merge itself, because the merge (with its lookup
    of the deleted keys) would be computed twice.
    """
    latest = _latest_staged()
    statement = postgresql.insert(ProfileRow).from_select(
        ["user_id", "traits", "create_time", "update_time"],
        select(latest.c.user_id, latest.c.traits, *_now(now)),
    )
    traits: ColumnElement[Any] = statement.excluded.traits
    if not replace:
        sent = STAGING.alias("sent")
        deleted = (
            select(sent.c.deleted)
            # Spelled out: SQLAlchemy would add ``excluded`` to the subquery's FROM, not correlate it.
            .where(sent.c.user_id == literal_column("excluded.user_id"))
            .order_by(sent.c.seq.desc())
            .limit(1)
            .scalar_subquery()
        )
        traits = merge_traits_sql(profiles_table.c.traits, statement.excluded.traits, deleted)
    fits = (
        _surely_fits(profiles_table.c.traits, statement.excluded.traits) if guarded and not replace else None
    )
    return statement.on_conflict_do_update(
        index_elements=[ProfileRow.user_id],
        set_={"traits": traits, "update_time": statement.excluded.update_time},
        where=fits,
    )


def sqlite_upsert(replace: bool) -> Insert:
    """The upsert of the last staged profile of each user, merged by ``merge_traits`` itself.

    SQLite holds the write lock: the stored traits read by the SELECT cannot change before the write.
    """
    ranked = select(
        STAGING.c.user_id,
        STAGING.c.traits,
        func.row_number().over(partition_by=STAGING.c.user_id, order_by=STAGING.c.seq.desc()).label("rank"),
    ).subquery()
    stored = profiles_table.alias("stored")
    merged = getattr(func, MERGE_FUNCTION)(stored.c.traits, ranked.c.traits, replace)
    rows = (
        select(ranked.c.user_id, merged, *_now())
        .select_from(ranked.outerjoin(stored, stored.c.user_id == ranked.c.user_id))
        # The WHERE also keeps SQLite from reading ON CONFLICT as a join's ON clause.
        .where(ranked.c.rank == 1)
    )
    statement = sqlite.insert(ProfileRow).from_select(
        ["user_id", "traits", "create_time", "update_time"], rows
    )
    return statement.on_conflict_do_update(
        index_elements=[ProfileRow.user_id],
        set_={"traits": statement.excluded.traits, "update_time": statement.excluded.update_time},
    )


def _now(now: datetime | None = None) -> tuple[ColumnElement[datetime], ColumnElement[datetime]]:
    """``now`` (default: the current time) as the create and update times."""
    now = now or datetime.now(UTC)
    return literal(now, DateTime(timezone=True)), literal(now, DateTime(timezone=True))


def postgresql_record(
    seq: int, user_id: str, traits: Mapping[str, Any], sent_json: str
) -> tuple[int, str, str, list[str]]:
    """A staging row for COPY: the traits without their null keys (``sent_json``), and those keys."""
    deleted = [key for key, value in traits.items() if value is None]
    return seq, user_id, sent_json, deleted


def compact_json(value: Mapping[str, Any]) -> str:
    """``value`` as compact UTF-8 JSON, as ``checks.check_traits_size`` measures it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _merge_json(stored: str | None, sent: str, replace: int) -> str:
    """SQLite function: ``merge_traits`` on JSON texts; compact, so its length is the size checked."""
    merged = merge_traits(json.loads(stored) if stored else {}, json.loads(sent), replace=bool(replace))
    return compact_json(merged)


def register_merge_function(sync_connection: Any) -> None:
    """Register ``segmentd_merge_traits(stored, sent, replace)`` on a SQLite connection (for ``run_sync``)."""
    dbapi_connection = sync_connection.connection.dbapi_connection
    dbapi_connection.create_function(MERGE_FUNCTION, 3, _merge_json, deterministic=True)

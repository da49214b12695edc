"""SQL helper functions for membership queries (PostgreSQL only): time, semver, bucket, lower.

The functions are those of ``service.sqlgen.functions`` as they were when this revision was
written. The SQL text is copied here on purpose: a later change to that module must come with
a new revision, never rewrite this one. SQLite needs no migration: its connections register
the same functions in Python (``service.sqlgen.functions.register_sqlite_functions``).

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME_US = r"""
CREATE OR REPLACE FUNCTION segmentd_time_us(value text) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $function$
DECLARE
    -- The expression of service.engine.times; [0-9] because \d would follow the locale.
    part text[] := regexp_match(value,
        '^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])'
        '(?:\.([0-9]{1,9}))?(?:[Zz]|([+-])([01][0-9]|2[0-3]):([0-5][0-9]))$');
    year integer;
    month integer;
    day integer;
    offset_seconds integer := 0;
BEGIN
    IF part IS NULL THEN
        RETURN NULL;
    END IF;
    year := part[1]::integer;
    month := part[2]::integer;
    day := part[3]::integer;
    -- Checked by hand so that February 30 gives NULL instead of make_date raising. (The CASE
    -- is parenthesised: PL/pgSQL ends an IF condition at the first THEN it meets.)
    IF year < 1 OR month NOT BETWEEN 1 AND 12 OR day < 1 OR day > (CASE
        WHEN month = 2 AND mod(year, 4) = 0 AND (mod(year, 100) <> 0 OR mod(year, 400) = 0) THEN 29
        WHEN month = 2 THEN 28
        WHEN month IN (4, 6, 9, 11) THEN 30
        ELSE 31 END)
    THEN
        RETURN NULL;
    END IF;
    IF part[8] IS NOT NULL THEN
        offset_seconds := (part[9]::integer * 3600 + part[10]::integer * 60)
            * CASE part[8] WHEN '+' THEN 1 ELSE -1 END;
    END IF;
    -- Integer arithmetic, not timestamptz: its parser caps offsets at 15:59 and accepts second 60.
    RETURN ((make_date(year, month, day) - DATE '1970-01-01')::bigint * 86400
            + part[4]::integer * 3600 + part[5]::integer * 60 + part[6]::integer
            - offset_seconds) * 1000000
        + rpad(coalesce(part[7], ''), 6, '0')::bigint;  -- rpad also cuts beyond 6 digits
END
$function$
"""

_SEMVER_CMP = r"""
CREATE OR REPLACE FUNCTION segmentd_semver_cmp(a text, b text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $function$
DECLARE
    pattern CONSTANT text := '^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)'
        '(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$';
    left_part text[] := regexp_match(a, pattern);
    right_part text[] := regexp_match(b, pattern);
    left_ids text[];
    right_ids text[];
    x text;
    y text;
BEGIN
    IF left_part IS NULL OR right_part IS NULL THEN
        RETURN NULL;
    END IF;
    left_ids := coalesce(string_to_array(left_part[4], '.'), '{}');
    right_ids := coalesce(string_to_array(right_part[4], '.'), '{}');
    IF array_to_string(left_ids || right_ids, '.') ~ '(^|\.)0[0-9]+(\.|$)' THEN
        RETURN NULL;  -- a numeric pre-release identifier with a leading zero
    END IF;
    FOR i IN 1..3 LOOP
        x := left_part[i];
        y := right_part[i];
        IF x <> y THEN
            -- No leading zeros: the longer number is larger, equal lengths compare as text.
            RETURN CASE WHEN (length(x), x COLLATE "C") < (length(y), y COLLATE "C") THEN -1 ELSE 1 END;
        END IF;
    END LOOP;
    IF cardinality(left_ids) = 0 OR cardinality(right_ids) = 0 THEN
        RETURN sign(cardinality(right_ids)) - sign(cardinality(left_ids));
    END IF;
    FOR i IN 1..least(cardinality(left_ids), cardinality(right_ids)) LOOP
        x := left_ids[i];
        y := right_ids[i];
        IF x <> y THEN
            RETURN CASE
                WHEN x ~ '^[0-9]+$' AND y ~ '^[0-9]+$' THEN
                    CASE WHEN (length(x), x COLLATE "C") < (length(y), y COLLATE "C") THEN -1 ELSE 1 END
                WHEN x ~ '^[0-9]+$' THEN -1
                WHEN y ~ '^[0-9]+$' THEN 1
                WHEN x COLLATE "C" < y COLLATE "C" THEN -1
                ELSE 1 END;
        END IF;
    END LOOP;
    RETURN sign(cardinality(left_ids) - cardinality(right_ids));
END
$function$
"""

_BUCKET = r"""
CREATE OR REPLACE FUNCTION segmentd_bucket(salt text, user_id text) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $function$
    -- The first 32 bits of the md5 of the UTF-8 text, as an unsigned number.
    SELECT ('x' || left(md5(salt || '/' || user_id), 8))::bit(32)::bigint
$function$
"""

_LOWER = r"""
CREATE OR REPLACE FUNCTION segmentd_lower(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $function$
    -- ICU's root locale gives the full Unicode mapping of Python's str.lower (final sigma
    -- included) whatever the database's LC_CTYPE; plain lower() in a "C" database is ASCII only.
    SELECT lower(value COLLATE "und-x-icu")
$function$
"""

_DROPS = (
    'DROP FUNCTION IF EXISTS segmentd_time_us(text)',
    'DROP FUNCTION IF EXISTS segmentd_semver_cmp(text, text)',
    'DROP FUNCTION IF EXISTS segmentd_bucket(text, text)',
    'DROP FUNCTION IF EXISTS segmentd_lower(text)',
)


def _is_postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    """Create the helper functions (CREATE OR REPLACE: safe to re-run)."""
    if _is_postgresql():
        for statement in (_TIME_US, _SEMVER_CMP, _BUCKET, _LOWER):
            op.execute(statement)


def downgrade() -> None:
    """Drop the helper functions."""
    if _is_postgresql():
        for statement in _DROPS:
            op.execute(statement)

"""An import's merge is refused exactly when UpsertProfile's same merge is, near the size limit.

The import proves most merges within the limit from PostgreSQL's text forms (a bound) and checks
the others exactly; UpsertProfile measures the merged traits as compact JSON. The traits here are
built to land around the limit in the ways the two measures differ: multi-byte characters,
escaped characters, large doubles (shorter as PostgreSQL's digits than as Python's exponent
form) and many small numbers (longer as text, a space after every comma).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from segmentd.errors import InvalidArgument
from segmentd.importer import check_profile
from segmentd.store.checks import MAX_TRAITS_BYTES, check_traits_size
from segmentd.store.importer import BulkImporter, RowsRejected, StagedProfile
from segmentd.store.profiles import ProfileRepository

_USERS = itertools.count()


# Each kind of value, of about ``n`` bytes as compact JSON.
_KINDS: dict[str, Callable[[int], Any]] = {
    "multibyte": lambda n: "é" * (n // 2),
    "escaped": lambda n: 'x\n"' * (n // 5),
    "large doubles": lambda n: [1.2345678901234568e16] * (n // 23),
    "small numbers": lambda n: list(range(n // 5)),
}


@st.composite
def _traits_around_the_limit(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """Stored and sent traits of one kind, each a quarter to three quarters of the limit."""
    kind = _KINDS[draw(st.sampled_from(sorted(_KINDS)))]
    stored_size, sent_size = (int(draw(st.floats(0.25, 0.75)) * MAX_TRAITS_BYTES) for _ in range(2))
    stored = {"a": kind(stored_size), "c": draw(st.booleans())}
    sent = {
        "b": kind(sent_size),
        **draw(st.fixed_dictionaries({}, optional={"c": st.none(), "d": st.just(1)})),
    }
    return stored, sent


async def _one(profile: StagedProfile) -> AsyncIterator[Sequence[StagedProfile]]:
    yield [profile]


async def _upsert_merge(
    profiles: ProfileRepository, user_id: str, sent: dict[str, Any]
) -> dict[str, Any] | None:
    try:
        return dict((await profiles.upsert(user_id, sent)).traits)
    except InvalidArgument:
        return None


async def _import_merge(importer: BulkImporter, staged: StagedProfile) -> bool:
    try:
        await importer.import_profiles(_one(staged), replace=False)
    except RowsRejected:
        return False
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(traits=_traits_around_the_limit())
async def test_import_merge__near_the_limit__refused_exactly_when_upsert_refuses(sessions, engine, traits):
    stored, sent = traits
    profiles, importer = ProfileRepository(sessions), BulkImporter(engine)
    # Given two users with the same stored traits, which fit, and sent traits that fit alone
    number = next(_USERS)
    by_upsert, by_import = f"upsert-{number}", f"import-{number}"
    try:
        staged = StagedProfile(1, by_import, *check_profile(by_import, sent))
        check_traits_size(stored, "traits")
    except InvalidArgument:
        assume(False)
    await profiles.upsert(by_upsert, stored)
    await profiles.upsert(by_import, stored)

    # When one merges through UpsertProfile and the other through an import
    upserted = await _upsert_merge(profiles, by_upsert, sent)
    imported = await _import_merge(importer, staged)

    # Then both are refused, or both stored the same traits
    assert imported is (upserted is not None)
    assert dict((await profiles.get(by_import)).traits) == (upserted if upserted is not None else stored)

"""Freshness and consistency of verdicts over gRPC: STRONG reads, per-key invalidation, read times.

Writes "made elsewhere" are made by a second server on the same database (on SQLite, a second
process's view of the file: no notifications reach this server) or by SQL run directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.config import settings_for_tests
from segmentd.server import RunningServer, start_server
from segmentd.store.database import create_engine
from segmentd_client.v1 import evaluation_pb2, segments_pb2_grpc
from tests.api.conftest import create_segment, upsert
from tests.statements import recorded_statements

FREE = {"name": "free", "rule": {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "free"}}}
STRONG = evaluation_pb2.STRONG


def _request(user_id: str, consistency: Any = evaluation_pb2.CONSISTENCY_UNSPECIFIED) -> Any:
    return evaluation_pb2.EvaluateUserRequest(user_id=user_id, consistency=consistency)


@pytest.fixture
def server_overrides() -> dict[str, Any]:
    # Long safety nets: what these tests see must come from invalidation or STRONG reads.
    return {"profile_cache_ttl_seconds": 3600.0, "catalogue_check_seconds": 3600.0}


@pytest.fixture
async def other_server(server: RunningServer, store_url: str) -> AsyncIterator[RunningServer]:
    """A second server on the same database, as another replica would be."""
    settings = settings_for_tests(
        database_url=store_url,
        migrate=False,
        host="127.0.0.1",
        profile_cache_ttl_seconds=3600.0,
        catalogue_check_seconds=3600.0,
    )
    running = await start_server(settings)
    try:
        yield running
    finally:
        await running.stop(None)


@pytest.fixture
async def direct_sql(store_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(store_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _set_plan_directly(engine: AsyncEngine, user_id: str, plan: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE profiles SET traits = :traits WHERE user_id = :user_id"),
            {"traits": f'{{"plan": "{plan}"}}', "user_id": user_id},
        )


async def _warm(evaluation: Any, server: RunningServer, user_id: str) -> None:
    """Evaluate until the user's entry stays cached: on PostgreSQL, the notification of the
    upsert just made may arrive after the first evaluation and drop the entry once more."""
    for _ in range(50):
        await evaluation.EvaluateUser(_request(user_id))
        await asyncio.sleep(0.1)
        if server.profile_cache.get(user_id) is not None:
            return
    raise AssertionError(f"{user_id} never stayed cached")


async def test_strong__profile_written_directly_in_the_database__seen_at_once(
    segments, profiles, evaluation, direct_sql
):
    # Given: a cached verdict
    await create_segment(segments, FREE)
    await upsert(profiles, "u1", {"plan": "pro"})
    assert list((await evaluation.EvaluateUser(_request("u1"))).segments) == []
    # When: the profile changes behind the server's back
    await _set_plan_directly(direct_sql, "u1", "free")
    # Then: STRONG reads the store; the cache now holds that fresher read
    assert list((await evaluation.EvaluateUser(_request("u1", STRONG))).segments) == ["free"]
    assert list((await evaluation.EvaluateUser(_request("u1"))).segments) == ["free"]


async def test_strong__segment_created_through_another_replica__seen_at_once(
    segments, profiles, evaluation, other_server: RunningServer
):
    # Given: this server's catalogue is warm
    await upsert(profiles, "u1", {"plan": "free"})
    assert list((await evaluation.EvaluateUser(_request("u1"))).segments) == []
    # When: a segment is created through the other server
    async with grpc.aio.insecure_channel(f"127.0.0.1:{other_server.port}") as channel:
        await create_segment(segments_pb2_grpc.SegmentServiceStub(channel), FREE)
    # Then
    assert list((await evaluation.EvaluateUser(_request("u1", STRONG))).segments) == ["free"]


async def _named_strong(evaluation: Any, how: str) -> list[str]:
    """The segments of u1 that ``how`` (a named STRONG evaluation, or explanation) answers."""
    if how == "explain":
        explained = await evaluation.ExplainEvaluation(
            evaluation_pb2.ExplainEvaluationRequest(user_id="u1", segment_name="free", consistency=STRONG)
        )
        return ["free"] if explained.matched else []
    request = evaluation_pb2.EvaluateUserRequest(user_id="u1", segment_names=["free"], consistency=STRONG)
    return list((await evaluation.EvaluateUser(request)).segments)


@pytest.mark.parametrize("how", ["named", "explain"])
async def test_strong_naming_a_segment__created_through_another_replica__found_at_once(
    segments, profiles, evaluation, server: RunningServer, other_server: RunningServer, how
):
    # Given: this server's catalogue is warm, and hears of no change (on PostgreSQL its
    # listener is stopped: a lost notification, the case STRONG is for)
    await upsert(profiles, "u1", {"plan": "free"})
    if server.listener is not None:
        await server.listener.stop()  # its last act drops the caches: warm them again below
    assert list((await evaluation.EvaluateUser(_request("u1"))).segments) == []
    # When: the segment is created through the other server
    async with grpc.aio.insecure_channel(f"127.0.0.1:{other_server.port}") as channel:
        await create_segment(segments_pb2_grpc.SegmentServiceStub(channel), FREE)
    # Then: a STRONG call naming it asks the store rather than answering NOT_FOUND
    assert await _named_strong(evaluation, how) == ["free"]


async def test_strong_naming_an_unknown_segment__not_found(profiles, evaluation):
    await upsert(profiles, "u1", {"plan": "free"})
    request = evaluation_pb2.EvaluateUserRequest(user_id="u1", segment_names=["nope"], consistency=STRONG)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await evaluation.EvaluateUser(request)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == "segment 'nope' does not exist"


async def test_strong__unchanged_catalogue__one_statement(
    segments, profiles, evaluation, server: RunningServer
):
    # Given: a warm server
    await create_segment(segments, FREE)
    await upsert(profiles, "u1", {"plan": "free"})
    await evaluation.EvaluateUser(_request("u1"))
    with recorded_statements(server.engine) as statements:
        # When
        response = await evaluation.EvaluateUser(_request("u1", STRONG))
    # Then: the profile, its counts and the catalogue version came back together
    assert list(response.segments) == ["free"]
    assert len(statements) == 1 and "segment_catalogue" in statements[0], statements


async def test_unknown_consistency__invalid_argument_naming_the_field(profiles, evaluation):
    await upsert(profiles, "u1", {})
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await evaluation.EvaluateUser(_request("u1", 7))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "consistency" in (raised.value.details() or "")


async def test_freshness__cached_verdict__says_when_its_profile_was_read(
    segments, profiles, evaluation, server: RunningServer
):
    # Given
    await create_segment(segments, FREE)
    await upsert(profiles, "u1", {"plan": "free"})
    await _warm(evaluation, server, "u1")
    # When
    first = await evaluation.EvaluateUser(_request("u1"))
    second = await evaluation.EvaluateUser(_request("u1"))
    strong = await evaluation.EvaluateUser(_request("u1", STRONG))
    # Then: the cached answer keeps the time of the read it came from
    # (a read made for this call begins just after its "now" was fixed).
    assert first.HasField("profile_read_at") and first.HasField("segments_read_at")
    assert second.profile_read_at == first.profile_read_at
    assert second.evaluated_at.ToDatetime() > second.profile_read_at.ToDatetime()
    assert strong.profile_read_at.ToDatetime() > second.evaluated_at.ToDatetime()


async def test_freshness__batch_and_explain__carry_read_times(segments, profiles, evaluation):
    await create_segment(segments, FREE)
    await upsert(profiles, "u1", {"plan": "free"})
    batch = [
        answer
        async for answer in evaluation.BatchEvaluateUsers(
            evaluation_pb2.BatchEvaluateUsersRequest(user_ids=["u1", "ghost"], consistency=STRONG)
        )
    ]
    explained = await evaluation.ExplainEvaluation(
        evaluation_pb2.ExplainEvaluationRequest(user_id="u1", segment_name="free", consistency=STRONG)
    )
    assert batch[0].HasField("profile_read_at") and batch[0].HasField("evaluated_at")
    assert not batch[1].found and not batch[1].HasField("profile_read_at")
    assert explained.matched and explained.HasField("profile_read_at")


async def test_write_to_one_user__other_users_stay_cached(
    segments, profiles, evaluation, server: RunningServer, dialect: str
):
    # Given: two cached users
    await create_segment(segments, FREE)
    for user_id in ("u1", "u2"):
        await upsert(profiles, user_id, {"plan": "free"})
        await _warm(evaluation, server, user_id)
    hits = server.profile_cache.hits
    # When: one of them is written
    await upsert(profiles, "u1", {"plan": "pro"})
    # Then: the other is still answered from the cache; the written one is read again
    # (PostgreSQL) or was written through by its upsert (SQLite), and its verdict is new
    await evaluation.EvaluateUser(_request("u2"))
    assert server.profile_cache.hits == hits + 1
    assert list((await evaluation.EvaluateUser(_request("u1"))).segments) == []
    assert server.profile_cache.hits == hits + (2 if dialect == "sqlite" else 1)

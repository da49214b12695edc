"""Access control on a real server (SQLite and PostgreSQL): keys, scopes, refusals, logs, metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sqlalchemy import text

from segmentd.config import settings_for_tests
from segmentd.server import RunningServer, start_server
from segmentd.store.database import create_engine
from segmentd_client.v1 import (
    evaluation_pb2,
    evaluation_pb2_grpc,
    profiles_pb2,
    profiles_pb2_grpc,
    segments_pb2,
    segments_pb2_grpc,
)
from tests.api.conftest import profile_message, segment_message
from tests.observability.conftest import free_port, labels, scrape
from tests.security.conftest import bearer, issue_key, revoke_key, start_auth_server

PAYING = {
    "name": "paying",
    "rule": {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "pro"}},
}


@pytest.fixture
async def channel(auth_server: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{auth_server.port}") as channel:
        yield channel


async def _code_of(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def _members(channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...]) -> list[str]:
    stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
    request = evaluation_pb2.ListSegmentMembersRequest(segment_name="paying")
    return [
        user_id
        async for chunk in stub.ListSegmentMembers(request, metadata=metadata)
        for user_id in chunk.user_ids
    ]


async def _import(
    channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...]
) -> profiles_pb2.ImportProfilesResponse:
    async def requests() -> AsyncIterator[profiles_pb2.ImportProfilesRequest]:
        yield profiles_pb2.ImportProfilesRequest(profiles=[profile_message("u2", {"plan": "pro"})])

    stub = profiles_pb2_grpc.ProfileServiceStub(channel)
    return await stub.ImportProfiles(requests(), metadata=metadata)


@pytest.mark.parametrize(
    ("metadata", "says"),
    [
        ((), "missing API key"),
        ((("authorization", "Bearer sdk_000000000000_" + "A" * 43),), "unknown or revoked API key"),
        ((("authorization", "Bearer not-a-key"),), "malformed API key"),
        ((("authorization", "Basic dXNlcjpwYXNz"),), "missing API key"),
    ],
    ids=["no-key", "unknown-key", "malformed-key", "not-bearer"],
)
async def test_call__without_a_valid_key__unauthenticated_and_nothing_written(
    channel: grpc.aio.Channel, store_url: str, metadata: tuple[tuple[str, str], ...], says: str
):
    # Given: an admin key, to look at the store afterwards
    _, admin = await issue_key(store_url, "admin")
    profiles = profiles_pb2_grpc.ProfileServiceStub(channel)
    upsert = profiles_pb2.UpsertProfileRequest(profile=profile_message("u1", {"plan": "pro"}))

    # When: unary, server-streaming and client-streaming calls come without a valid key
    with pytest.raises(grpc.aio.AioRpcError) as unary:
        await profiles.UpsertProfile(upsert, metadata=metadata)
    with pytest.raises(grpc.aio.AioRpcError) as streamed:
        await _members(channel, metadata)
    with pytest.raises(grpc.aio.AioRpcError) as imported:
        await _import(channel, metadata)

    # Then: all UNAUTHENTICATED, and the handlers never ran
    for error in (unary, streamed, imported):
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (unary.value.details() or "").startswith(says)
    for user_id in ("u1", "u2"):
        get = profiles.GetProfile(profiles_pb2.GetProfileRequest(user_id=user_id), metadata=bearer(admin))
        assert await _code_of(get) == grpc.StatusCode.NOT_FOUND


async def test_call__key_without_the_scope__permission_denied(channel: grpc.aio.Channel, store_url: str):
    # Given: a key that may evaluate and nothing else
    _, evaluate = await issue_key(store_url, "evaluate")
    segments = segments_pb2_grpc.SegmentServiceStub(channel)
    evaluation = evaluation_pb2_grpc.EvaluationServiceStub(channel)

    # When / Then: evaluations pass the check (the unknown user is the handler's answer) ...
    ask = evaluation.EvaluateUser(
        evaluation_pb2.EvaluateUserRequest(user_id="nobody"), metadata=bearer(evaluate)
    )
    assert await _code_of(ask) == grpc.StatusCode.NOT_FOUND
    profile = evaluation_pb2.EvaluateProfileRequest()
    profile.traits.update({"plan": "pro"})
    assert (
        await _code_of(evaluation.EvaluateProfile(profile, metadata=bearer(evaluate))) == grpc.StatusCode.OK
    )

    # ... writes, reads and listings do not
    create = segments.CreateSegment(
        segments_pb2.CreateSegmentRequest(segment=segment_message(PAYING)), metadata=bearer(evaluate)
    )
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await create
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "write:segments" in (denied.value.details() or "")
    listing = segments.ListSegments(segments_pb2.ListSegmentsRequest(), metadata=bearer(evaluate))
    assert await _code_of(listing) == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as members:
        await _members(channel, bearer(evaluate))
    assert members.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_call__scoped_keys__each_does_its_part(channel: grpc.aio.Channel, store_url: str):
    # Given: one key per job
    _, writer = await issue_key(store_url, "write:segments")
    _, loader = await issue_key(store_url, "write:profiles")
    _, reader = await issue_key(store_url, "read")

    # When: the writer defines a segment, the loader imports and upserts profiles
    segments = segments_pb2_grpc.SegmentServiceStub(channel)
    await segments.CreateSegment(
        segments_pb2.CreateSegmentRequest(segment=segment_message(PAYING)), metadata=bearer(writer)
    )
    await _import(channel, bearer(loader))
    await profiles_pb2_grpc.ProfileServiceStub(channel).UpsertProfile(
        profiles_pb2.UpsertProfileRequest(profile=profile_message("u1", {"plan": "pro"})),
        metadata=bearer(loader),
    )

    # Then: the reader lists and counts the members
    assert await _members(channel, bearer(reader)) == ["u1", "u2"]
    count = await evaluation_pb2_grpc.EvaluationServiceStub(channel).CountSegmentMembers(
        evaluation_pb2.CountSegmentMembersRequest(segment_name="paying"), metadata=bearer(reader)
    )
    assert count.count == 2
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await _import(channel, bearer(reader))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_call__admin_key__may_do_everything(channel: grpc.aio.Channel, store_url: str):
    _, admin = await issue_key(store_url, "admin")
    segments = segments_pb2_grpc.SegmentServiceStub(channel)
    await segments.CreateSegment(
        segments_pb2.CreateSegmentRequest(segment=segment_message(PAYING)), metadata=bearer(admin)
    )
    await _import(channel, bearer(admin))
    assert await _members(channel, bearer(admin)) == ["u2"]
    evaluation = evaluation_pb2_grpc.EvaluationServiceStub(channel)
    verdict = await evaluation.EvaluateUser(
        evaluation_pb2.EvaluateUserRequest(user_id="u2"), metadata=bearer(admin)
    )
    assert list(verdict.segments) == ["paying"]
    await segments.DeleteSegment(segments_pb2.DeleteSegmentRequest(name="paying"), metadata=bearer(admin))


async def test_health_and_reflection__no_key__open(channel: grpc.aio.Channel):
    health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING

    async def ask() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    answers = [
        answer
        async for answer in reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(ask())
    ]
    names = {service.name for service in answers[0].list_services_response.service}
    assert "segmentd.v1.EvaluationService" in names


async def test_call__revoked_key__refused_once_the_cache_forgets(store_url: str):
    # Given: a server that trusts a verdict for 0.2 s, and a key it has just accepted
    running = await start_auth_server(store_url, auth_cache_seconds=0.2)
    try:
        key_id, key = await issue_key(store_url, "read")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            segments = segments_pb2_grpc.SegmentServiceStub(channel)
            await segments.ListSegments(segments_pb2.ListSegmentsRequest(), metadata=bearer(key))

            # When: the key is revoked and the bound has passed
            await revoke_key(store_url, key_id)
            await asyncio.sleep(0.3)

            # Then: the key is refused
            listing = segments.ListSegments(segments_pb2.ListSegmentsRequest(), metadata=bearer(key))
            assert await _code_of(listing) == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await running.stop(None)


async def test_call__key_revoked__refused_by_every_replica_before_the_cache_expires(store_url: str):
    if not store_url.startswith("postgresql"):
        pytest.skip("replicas share a PostgreSQL database")
    # Given: two replicas that would trust a verdict for an hour, both listening, and a key
    # each has just accepted
    replicas = [await start_auth_server(store_url, auth_cache_seconds=3600) for _ in range(2)]
    try:
        for replica in replicas:
            assert replica.listener is not None
            await asyncio.wait_for(replica.listener.listening.wait(), 10)
        key_id, key = await issue_key(store_url, "read")
        channels = [grpc.aio.insecure_channel(f"127.0.0.1:{replica.port}") for replica in replicas]
        stubs = [segments_pb2_grpc.SegmentServiceStub(channel) for channel in channels]
        for stub in stubs:
            await stub.ListSegments(segments_pb2.ListSegmentsRequest(), metadata=bearer(key))

        # When: the key is revoked in the database (as `segmentd keys revoke` does)
        await revoke_key(store_url, key_id)

        # Then: both replicas refuse it as soon as the notification arrives
        codes = []
        for stub in stubs:
            for _ in range(100):
                code = await _code_of(
                    stub.ListSegments(segments_pb2.ListSegmentsRequest(), metadata=bearer(key))
                )
                if code != grpc.StatusCode.OK:
                    break
                await asyncio.sleep(0.05)
            codes.append(code)
        assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 2
        for channel in channels:
            await channel.close()
    finally:
        for replica in replicas:
            await replica.stop(None)


async def test_refusals__logged_with_the_key_id__never_the_key(
    channel: grpc.aio.Channel, store_url: str, caplog: pytest.LogCaptureFixture
):
    # Given: a read key and an unknown key
    key_id, reader = await issue_key(store_url, "read")
    unknown = "sdk_000000000000_" + "Z" * 43
    segments = segments_pb2_grpc.SegmentServiceStub(channel)
    caplog.set_level(logging.INFO)

    # When: both are refused
    for key in (reader, unknown):
        delete = segments.DeleteSegment(segments_pb2.DeleteSegmentRequest(name="x"), metadata=bearer(key))
        assert await _code_of(delete) in {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED}

    # Then: the auth log names the method and the key id; no line holds either key
    auth_lines = [record.getMessage() for record in caplog.records if record.name == "segmentd.auth"]
    assert any(key_id in line and "DeleteSegment" in line for line in auth_lines)
    assert any("unknown or revoked" in line for line in auth_lines)
    everything = caplog.text + "".join(str(vars(record)) for record in caplog.records)
    assert reader not in everything and unknown not in everything
    # The secret is all after the key id (sdk_<id>_<secret>); it may hold "_" itself.
    assert reader.split("_", 2)[2] not in everything


async def test_metrics__refused_calls__counted_by_their_codes(store_url: str):
    # Given: a server with metrics and access control, a read key
    running = await start_auth_server(store_url, metrics_port=free_port())
    try:
        _, reader = await issue_key(store_url, "read")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            segments = segments_pb2_grpc.SegmentServiceStub(channel)
            # When: one call has no key (twice), one lacks the scope, one passes
            for _ in range(2):
                await _code_of(segments.ListSegments(segments_pb2.ListSegmentsRequest()))
            await _code_of(
                segments.DeleteSegment(segments_pb2.DeleteSegmentRequest(name="x"), metadata=bearer(reader))
            )
            await segments.ListSegments(segments_pb2.ListSegmentsRequest(), metadata=bearer(reader))
            samples = await scrape(running)
    finally:
        await running.stop(None)

    # Then
    def handled(method: str, code: str) -> float:
        rpc = labels(
            grpc_type="unary", grpc_service="segmentd.v1.SegmentService", grpc_method=method, grpc_code=code
        )
        return samples.get(("grpc_server_handled_total", rpc), 0.0)

    assert handled("ListSegments", "UNAUTHENTICATED") == 2
    assert handled("ListSegments", "OK") == 1
    assert handled("DeleteSegment", "PERMISSION_DENIED") == 1


async def test_call__keys_cannot_be_checked__unavailable_never_let_through(store_url: str):
    # Given: a server with no verdict cache, whose key table has gone
    running = await start_auth_server(store_url, auth_cache_seconds=0)
    engine = create_engine(store_url)
    try:
        _, key = await issue_key(store_url, "read")
        async with engine.begin() as connection:
            await connection.execute(text("ALTER TABLE api_keys RENAME TO api_keys_gone"))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            # When
            listing = segments_pb2_grpc.SegmentServiceStub(channel).ListSegments(
                segments_pb2.ListSegmentsRequest(), metadata=bearer(key)
            )
            code = await _code_of(listing)
        async with engine.begin() as connection:  # the PostgreSQL database is the next test's
            await connection.execute(text("ALTER TABLE api_keys_gone RENAME TO api_keys"))
    finally:
        await engine.dispose()
        await running.stop(None)

    # Then: on both stores the store cannot serve (UNAVAILABLE, the caller may retry; on
    # PostgreSQL SQLSTATE 42P01 undefined_table): the key is neither accepted nor called invalid
    assert code == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"host": "0.0.0.0"}, ["access control is OFF", "TLS is off"]),
        ({"host": "0.0.0.0", "require_auth": True}, ["TLS is off"]),
        ({"host": "127.0.0.1"}, []),
    ],
)
async def test_start__reachable_by_others__warns_what_is_off(
    store_url: str, caplog: pytest.LogCaptureFixture, overrides: dict[str, object], expected: list[str]
):
    caplog.set_level(logging.WARNING, logger="segmentd.server")
    settings = settings_for_tests(
        database_url=store_url, migrate=False, page_token_secret="not-the-default", **overrides
    )
    running = await start_server(settings)
    await running.stop(None)
    said = [record.getMessage() for record in caplog.records if record.name == "segmentd.server"]
    assert [next((part for part in expected if part in line), line) for line in said] == expected


async def test_call__key_lookup_blocked_past_the_deadline__deadline_exceeded_and_lookup_ended(store_url: str):
    if not store_url.startswith("postgresql"):
        pytest.skip("holds a table lock: PostgreSQL")
    # Given: a key the server has not seen, and its table locked by another transaction
    running = await start_auth_server(store_url)
    engine = create_engine(store_url)
    try:
        _, key = await issue_key(store_url, "read")
        async with engine.connect() as locker, locker.begin():
            await locker.execute(text("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE"))
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                # When: the call's lookup waits past the call's deadline
                listing = segments_pb2_grpc.SegmentServiceStub(channel).ListSegments(
                    segments_pb2.ListSegmentsRequest(), metadata=bearer(key), timeout=1.0
                )
                call = asyncio.ensure_future(_code_of(listing))
                await asyncio.sleep(0.5)
                waiting_before = await _lock_waits(locker)
                code = await call
                await asyncio.sleep(1.0)  # the store's bound fires a grace period after the deadline
                still_waiting = await _lock_waits(locker)
    finally:
        await engine.dispose()
        await running.stop(None)

    # Then: the caller hears DEADLINE_EXCEEDED, and the lookup no longer waits in the database
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert (waiting_before, still_waiting) == (1, 0)


async def _lock_waits(connection) -> int:
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'segmentd' AND wait_event_type = 'Lock'"
    )
    return int((await connection.execute(query)).scalar_one())


async def test_call__pool_exhausted_while_checking_the_key__resource_exhausted(store_url: str):
    if not store_url.startswith("postgresql"):
        pytest.skip("SQLite's key lookups do not wait for a pooled connection")
    # Given: a server whose only pooled connection is held, and no verdict cache
    _, key = await issue_key(store_url, "evaluate")
    running = await start_auth_server(
        store_url,
        auth_cache_seconds=0,
        database_pool_size=1,
        database_max_overflow=0,
        database_pool_timeout_seconds=0.3,
    )
    try:
        async with running.engine.connect() as held:
            await held.exec_driver_sql("SELECT 1")
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                # When
                call = evaluation_pb2_grpc.EvaluationServiceStub(channel).EvaluateUser(
                    evaluation_pb2.EvaluateUserRequest(user_id="u1"), metadata=bearer(key), timeout=10
                )
                code = await _code_of(call)
    finally:
        await running.stop(None)
    # Then: what any call says when the pool is exhausted, not INTERNAL
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_call__refused__its_request_never_decoded(
    store_url: str, channel: grpc.aio.Channel, monkeypatch: pytest.MonkeyPatch
):
    # Given: a request whose bytes hold a zero byte, so that decoding it would scan it for NUL
    from segmentd.api import decoding, strings

    scans: list[object] = []

    def counted_scan(*args: Any) -> str | None:
        scans.append(args)
        return strings.nul_field(*args)

    monkeypatch.setattr(decoding, "nul_field", counted_scan)
    request = profiles_pb2.UpsertProfileRequest(profile=profile_message("u1", {"seats": 0.0}))
    assert b"\0" in request.SerializeToString()
    stub = profiles_pb2_grpc.ProfileServiceStub(channel)
    # When: sent without a key, then with a valid one
    refused = await _code_of(stub.UpsertProfile(request))
    _, key = await issue_key(store_url, "write:profiles")
    accepted = await _code_of(stub.UpsertProfile(request, metadata=bearer(key)))
    # Then: only the accepted call's request was decoded (and scanned)
    assert (refused, accepted) == (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.OK)
    assert len(scans) == 1

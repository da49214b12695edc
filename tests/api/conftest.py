"""A real grpc.aio server on port 0, over a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import pytest
from google.protobuf import json_format

from segmentd.config import settings_for_tests
from segmentd.server import RunningServer, start_server
from segmentd_client.v1 import (
    evaluation_pb2_grpc,
    profiles_pb2,
    profiles_pb2_grpc,
    segments_pb2,
    segments_pb2_grpc,
)

if TYPE_CHECKING:
    from segmentd_client.v1.evaluation_pb2_grpc import EvaluationServiceAsyncStub
    from segmentd_client.v1.profiles_pb2_grpc import ProfileServiceAsyncStub
    from segmentd_client.v1.segments_pb2_grpc import SegmentServiceAsyncStub


@pytest.fixture
def server_overrides() -> dict[str, Any]:
    """Settings a test module wants changed (override this fixture)."""
    return {}


@pytest.fixture
async def server(store_url: str, server_overrides: dict[str, Any]) -> AsyncIterator[RunningServer]:
    settings = settings_for_tests(database_url=store_url, migrate=False, host="127.0.0.1", **server_overrides)
    running = await start_server(settings)
    try:
        yield running
    finally:
        await running.stop(None)


@pytest.fixture
async def channel(server: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield channel


@pytest.fixture
def segments(channel: grpc.aio.Channel) -> SegmentServiceAsyncStub:
    return segments_pb2_grpc.SegmentServiceStub(channel)


@pytest.fixture
def profiles(channel: grpc.aio.Channel) -> ProfileServiceAsyncStub:
    return profiles_pb2_grpc.ProfileServiceStub(channel)


@pytest.fixture
def evaluation(channel: grpc.aio.Channel) -> EvaluationServiceAsyncStub:
    return evaluation_pb2_grpc.EvaluationServiceStub(channel)


def segment_message(definition: dict[str, Any]) -> segments_pb2.Segment:
    """A Segment from its JSON form (DESIGN.md §3)."""
    return json_format.ParseDict(definition, segments_pb2.Segment())


def profile_message(user_id: str, traits: dict[str, Any]) -> profiles_pb2.Profile:
    profile = profiles_pb2.Profile(user_id=user_id)
    profile.traits.update(traits)
    return profile


async def create_segment(stub: SegmentServiceAsyncStub, definition: dict[str, Any]) -> segments_pb2.Segment:
    return await stub.CreateSegment(segments_pb2.CreateSegmentRequest(segment=segment_message(definition)))


async def upsert(
    stub: ProfileServiceAsyncStub, user_id: str, traits: dict[str, Any], replace: bool = False
) -> None:
    await stub.UpsertProfile(
        profiles_pb2.UpsertProfileRequest(profile=profile_message(user_id, traits), replace=replace)
    )


async def backends_named(postgres_url: str, application_name: str) -> int:
    """How many connections to the database at ``postgres_url`` call themselves ``application_name``."""
    connection = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
    try:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = $1 AND datname = current_database()",
                application_name,
            )
        )
    finally:
        await connection.close()

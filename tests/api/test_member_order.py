"""Members are listed in byte order of their ids on any database collation."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import grpc
import pytest

from segmentd.config import settings_for_tests
from segmentd.server import start_server
from segmentd_client.v1 import evaluation_pb2, evaluation_pb2_grpc, profiles_pb2_grpc, segments_pb2_grpc
from tests.api.conftest import create_segment, upsert
from tests.conftest import _administer, drop_database

pytestmark = pytest.mark.postgres

IDS = ["a", "B", "_x", "Z", "b", "é", "e", "ä"]
EVERYONE = {"name": "everyone", "rule": {"condition": {"attribute": "k", "operator": "EXISTS"}}}


@pytest.fixture
async def icu_database_url() -> AsyncIterator[str]:
    """A database whose default collation is ICU's en-US, where "a" sorts before "B"."""
    name = f"segmentd_test_icu_{os.getpid()}"
    try:
        await _administer(
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
            "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'",
        )
    except OSError as error:
        pytest.skip(f"PostgreSQL unreachable: {error}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        await drop_database(name)


async def test_list_segment_members__icu_default_collation__byte_order_and_resume(icu_database_url):
    # Given
    running = await start_server(settings_for_tests(database_url=icu_database_url, host="127.0.0.1"))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            await create_segment(segments_pb2_grpc.SegmentServiceStub(channel), EVERYONE)
            profiles = profiles_pb2_grpc.ProfileServiceStub(channel)
            for user_id in IDS:
                await upsert(profiles, user_id, {"k": 1})
            evaluation = evaluation_pb2_grpc.EvaluationServiceStub(channel)

            # When
            first = [
                message
                async for message in evaluation.ListSegmentMembers(
                    evaluation_pb2.ListSegmentMembersRequest(segment_name="everyone", page_size=3)
                )
            ]
            rest = [
                message
                async for message in evaluation.ListSegmentMembers(
                    evaluation_pb2.ListSegmentMembersRequest(
                        segment_name="everyone", page_token=first[-1].next_page_token
                    )
                )
            ]
    finally:
        await running.stop(None)

    # Then
    listed = [user_id for message in (*first, *rest) for user_id in message.user_ids]
    assert listed == sorted(IDS, key=str.encode)

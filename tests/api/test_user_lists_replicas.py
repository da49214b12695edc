"""List member changes through one replica are seen by another within the notification bound."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import text

from segmentd.store.database import create_engine
from segmentd_client.v1 import profiles_pb2_grpc, segments_pb2_grpc, user_lists_pb2, user_lists_pb2_grpc
from tests.api.conftest import create_segment, upsert
from tests.api.test_cross_replica import _equals, _eventually, _segments_of, pg_url, replicas

pytestmark = pytest.mark.postgres


async def test_list_change_through_one_replica__seen_by_the_other(replicas):
    first, second = replicas
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as a,
        grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as b,
    ):
        # Given: the second replica has both users cached, out of the list
        lists = user_lists_pb2_grpc.UserListServiceStub(a)
        await lists.CreateUserList(
            user_lists_pb2.CreateUserListRequest(user_list=user_lists_pb2.UserList(name="beta-testers"))
        )
        await create_segment(
            segments_pb2_grpc.SegmentServiceStub(a),
            {"name": "beta", "rule": {"in_list": {"name": "beta-testers"}}},
        )
        profiles = profiles_pb2_grpc.ProfileServiceStub(a)
        for user_id in ("u1", "u2"):
            await upsert(profiles, user_id, {"plan": "free"})
        await _eventually(lambda: _equals(_segments_of(b, "u1"), []))

        # When: members are added, then the list replaced, through the first replica
        await lists.AddUserListMembers(
            iter([user_lists_pb2.AddUserListMembersRequest(name="beta-testers", user_ids=["u1"])])
        )

        # Then
        await _eventually(lambda: _equals(_segments_of(b, "u1"), ["beta"]))
        await lists.ReplaceUserListMembers(
            iter([user_lists_pb2.ReplaceUserListMembersRequest(name="beta-testers", user_ids=["u2"])])
        )
        await _eventually(lambda: _equals(_segments_of(b, "u1"), []))
        await _eventually(lambda: _equals(_segments_of(b, "u2"), ["beta"]))


async def test_list_members_written_in_sql__seen_by_a_replica(replicas, pg_url):
    first, _second = replicas
    async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as a:
        lists = user_lists_pb2_grpc.UserListServiceStub(a)
        await lists.CreateUserList(
            user_lists_pb2.CreateUserListRequest(user_list=user_lists_pb2.UserList(name="beta-testers"))
        )
        await create_segment(
            segments_pb2_grpc.SegmentServiceStub(a),
            {"name": "beta", "rule": {"in_list": {"name": "beta-testers"}}},
        )
        await upsert(profiles_pb2_grpc.ProfileServiceStub(a), "u1", {})
        await _eventually(lambda: _equals(_segments_of(a, "u1"), []))

        # When: another system adds a member straight in the database
        engine = create_engine(pg_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    text("INSERT INTO user_list_members (list_name, user_id) VALUES ('beta-testers', 'u1')")
                )
        finally:
            await engine.dispose()

        # Then
        await _eventually(lambda: _equals(_segments_of(a, "u1"), ["beta"]))


__all__ = ["pg_url", "replicas"]  # fixtures, imported for pytest to find

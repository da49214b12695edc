"""The user-list methods of both clients, against a real server (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from segmentd_client import AsyncClient, Client, UserList
from segmentd_client.errors import FailedPrecondition, InvalidArgument, NotFound

BETA = {"name": "beta", "rule": {"in_list": {"name": "beta-testers"}}}


async def test_async_client__user_lists_end_to_end(client: AsyncClient):
    # Given
    created = await client.create_user_list("beta-testers", description="early access")
    await client.upsert_profile("u1", {})
    await client.upsert_profile("u2", {})
    await client.apply_segment(BETA)

    async def ids() -> AsyncIterator[str]:
        for user_id in ("u1", "u2", "u3"):
            yield user_id

    sent: list[int] = []

    # When
    added = await client.add_list_members("beta-testers", ids(), batch_size=2, on_sent=sent.append)
    removed = await client.remove_list_members("beta-testers", ["u2"])
    replaced = await client.replace_list_members("beta-testers", ["u2", "u3"])
    got = await client.get_user_list("beta-testers")
    listed = await client.list_user_lists()
    verdict = await client.evaluate_user("u2")

    # Then
    assert isinstance(created, UserList) and created.description == "early access"
    assert (added, removed, replaced, got.member_count) == (3, 2, 2, 2)
    assert sent == [2, 1]
    assert [user_list.name for user_list in listed] == ["beta-testers"]
    assert verdict.segments == ("beta",)
    with pytest.raises(FailedPrecondition):
        await client.delete_user_list("beta-testers")
    await client.delete_segment("beta")
    await client.delete_user_list("beta-testers")
    with pytest.raises(NotFound):
        await client.get_user_list("beta-testers")


async def test_async_client__bad_id__invalid_argument_and_nothing_changed(client: AsyncClient):
    await client.create_user_list("beta-testers")

    with pytest.raises(InvalidArgument) as error:
        await client.add_list_members("beta-testers", ["ok", ""])

    assert error.value.details.startswith("user_ids[1]")
    assert (await client.get_user_list("beta-testers")).member_count == 0


async def test_client__user_lists_and_a_failing_iterable(target: str):
    def failing() -> Iterator[str]:
        yield "u1"
        raise RuntimeError("the file broke")

    with Client(target) as client:
        await asyncio.to_thread(client.create_user_list, "beta-testers")
        count = await asyncio.to_thread(
            client.add_list_members, "beta-testers", iter(["a", "b"]), batch_size=1
        )
        with pytest.raises(RuntimeError, match="the file broke"):
            await asyncio.to_thread(client.replace_list_members, "beta-testers", failing(), batch_size=1)
        got = await asyncio.to_thread(client.get_user_list, "beta-testers")
        listed = await asyncio.to_thread(client.list_user_lists)
        with pytest.raises(NotFound):
            await asyncio.to_thread(client.remove_list_members, "nope", ["a"])
        await asyncio.to_thread(client.delete_user_list, "beta-testers")

    assert count == 2
    assert got.member_count == 2  # the broken replace changed nothing
    assert [user_list.name for user_list in listed] == ["beta-testers"]

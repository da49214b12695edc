"""segment_stats and compare_segments through the typed clients (sync and async)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from segmentd_client import AsyncClient, Client, InvalidArgument, NotFound
from tests.client.conftest import FREE

PRO = {"name": "pro", "rule": {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "pro"}}}
PEOPLE: list[tuple[str, dict[str, Any]]] = [
    ("u1", {"plan": "free", "mrr": 0, "channel": "ads"}),
    ("u2", {"plan": "free", "mrr": 10, "channel": "seo"}),
    ("u3", {"plan": "pro", "mrr": 100, "channel": "ads"}),
    ("u4", {"plan": "pro", "mrr": "n/a"}),
]


async def _load(client: AsyncClient) -> None:
    await client.apply_segments([FREE, PRO])
    for user_id, traits in PEOPLE:
        await client.upsert_profile(user_id, traits)


async def test_segment_stats__async__plain_values(client: AsyncClient) -> None:
    # Given
    await _load(client)
    # When
    stats = await client.segment_stats("free", ["mrr"], group_by="channel")
    # Then
    assert (stats.member_count, stats.population_count, stats.share) == (2, 4, 0.5)
    mrr = stats.trait("mrr")
    assert (mrr.count, mrr.sum, mrr.mean, mrr.min, mrr.max, mrr.p50, mrr.p90) == (2, 10, 5, 0, 10, 0, 10)
    assert mrr.share_of_sum == pytest.approx(10 / 110)
    assert [(g.value, g.member_count, g.rest) for g in stats.groups] == [("ads", 1, False), ("seo", 1, False)]
    with pytest.raises(KeyError):
        stats.trait("other")


async def test_compare_segments__async__overlaps(client: AsyncClient) -> None:
    # Given
    await _load(client)
    # When
    comparison = await client.compare_segments(["free", "pro"], ["mrr"])
    # Then
    assert [s.member_count for s in comparison.segments] == [2, 2]
    assert comparison.segments[1].trait("mrr").count == 1
    assert [(o.a, o.b, o.both, o.only_a, o.only_b) for o in comparison.overlaps] == [("free", "pro", 0, 2, 2)]
    with pytest.raises(InvalidArgument):
        await client.compare_segments(["free"])
    with pytest.raises(NotFound):
        await client.segment_stats("nope")


async def test_stats__sync_client__same_answers(client: AsyncClient, target: str) -> None:
    # Given
    await _load(client)
    with Client(target) as sync:
        # When
        stats = await asyncio.to_thread(sync.segment_stats, "pro", ["mrr"])
        comparison = await asyncio.to_thread(sync.compare_segments, ["pro", "free"])
    # Then
    assert stats == await client.segment_stats("pro", ["mrr"])
    assert comparison.overlaps[0].a == "pro"
    assert stats.trait("mrr").mean == 100

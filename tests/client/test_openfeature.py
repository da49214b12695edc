"""SegmentsHook with the OpenFeature SDK's in-memory provider, against a real server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider

from segmentd_client import AsyncClient, Client
from segmentd_client.openfeature import SegmentsHook
from tests.client.conftest import FREE


def _in_segment(segment: str):
    def evaluate(flag: InMemoryFlag[bool], context: EvaluationContext) -> FlagResolutionDetails[bool]:
        segments = context.attributes.get("segments")
        member = isinstance(segments, list) and segment in segments
        variant = "on" if member else "off"
        return FlagResolutionDetails(
            value=flag.variants[variant], variant=variant, reason=Reason.TARGETING_MATCH
        )

    return evaluate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def flags() -> Iterator[OpenFeatureClient]:
    provider = InMemoryProvider(
        {
            "new-pricing-page": InMemoryFlag(
                "off", {"on": True, "off": False}, context_evaluator=_in_segment("free")
            )
        }
    )
    api.set_provider(provider)
    try:
        yield api.get_client()
    finally:
        api.clear_hooks()
        api.clear_providers()


async def test_segments_hook__targeting_by_segment__cached_for_the_ttl(
    target: str, client: AsyncClient, flags: OpenFeatureClient
):
    # Given
    await client.apply_segment(FREE)
    await client.upsert_profile("u1", {"plan": "free"})
    await client.upsert_profile("u2", {"plan": "pro"})
    clock = Clock()
    with Client(target) as segmentd:
        api.add_hooks([SegmentsHook(segmentd, ttl_seconds=5, clock=clock)])

        def value(user_id: str | None) -> bool:
            return flags.get_boolean_value(
                "new-pricing-page", False, EvaluationContext(targeting_key=user_id)
            )

        # When / Then: members of "free" get the flag, others do not
        assert await asyncio.to_thread(value, "u1") is True
        assert await asyncio.to_thread(value, "u2") is False
        assert await asyncio.to_thread(value, "nobody") is False
        assert await asyncio.to_thread(value, None) is False

        # ... a change is seen once the cached segments expire
        await client.upsert_profile("u2", {"plan": "free"})
        assert await asyncio.to_thread(value, "u2") is False
        clock.now += 5
        assert await asyncio.to_thread(value, "u2") is True


def test_segments_hook__segmentd_unreachable__context_left_alone(flags: OpenFeatureClient):
    with Client("127.0.0.1:9", timeout=2) as segmentd:
        hook = SegmentsHook(segmentd)
        api.add_hooks([hook])
        details = flags.get_boolean_details("new-pricing-page", False, EvaluationContext(targeting_key="u1"))
    assert details.value is False and details.error_code is None


def test_segments_hook__lru_bounded():
    clock = Clock()
    with Client("127.0.0.1:9") as unused:
        hook = SegmentsHook(unused, ttl_seconds=5, max_users=2, clock=clock)
        for user_id in ("a", "b", "c"):
            hook._remember(user_id, [user_id])
    assert hook._cached("a") is None
    assert hook._cached("b") == ["b"] and hook._cached("c") == ["c"]
    clock.now += 5
    assert hook._cached("c") is None

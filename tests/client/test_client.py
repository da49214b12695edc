"""Client (blocking) against a real server; each blocking call runs in a thread, off the server's loop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from segmentd_client import Client, InvalidArgument, NotFound, Unavailable
from segmentd_client._channel import SERVICE_CONFIG
from tests.client.conftest import FREE, UPGRADE_CANDIDATES


async def test_client__apply_evaluate_explain_members(target: str, tmp_path: Path):
    # Given
    path = tmp_path / "free.yaml"
    path.write_text("name: free\nrule:\n  condition: {attribute: plan, operator: EQUALS, value: free}\n")
    with Client(target) as client:
        # When
        created = await asyncio.to_thread(client.apply_segment, path)
        applied = await asyncio.to_thread(client.apply_segments, [UPGRADE_CANDIDATES, FREE])
        await asyncio.to_thread(client.upsert_profile, "u1", {"plan": "free", "seats_used_pct": 90})
        await asyncio.to_thread(client.upsert_profile, "u2", {"plan": "free", "seats_used_pct": 10})
        verdict = await asyncio.to_thread(client.evaluate_user, "u1", consistency="strong")
        why = await asyncio.to_thread(client.explain, "u2", "upgrade-candidates")
        members = await asyncio.to_thread(lambda: list(client.iter_members("free")))
        count = await asyncio.to_thread(client.count_members, "upgrade-candidates")
        listed = await asyncio.to_thread(client.list_segments)
    # Then
    assert str(created) == "created free"
    assert [str(result) for result in applied] == ["updated free (v1 -> v2)", "created upgrade-candidates"]
    assert verdict.segments == ("free", "upgrade-candidates")
    assert not why.matched and why.root.children[1].actual_value == 10
    assert members == ["u1", "u2"] and count == 1
    assert [segment.name for segment in listed] == ["free", "upgrade-candidates"]


async def test_client__import_and_errors(target: str):
    def profiles() -> Iterator[dict[str, object]]:
        yield {"user_id": "a", "traits": {"plan": "free"}}
        yield {"user_id": "", "traits": {}}

    def broken() -> Iterator[dict[str, object]]:
        yield {"user_id": "b", "traits": {}}
        raise RuntimeError("file vanished")

    with Client(target) as client:
        with pytest.raises(InvalidArgument) as refused:
            await asyncio.to_thread(client.import_profiles, profiles())
        skipped = await asyncio.to_thread(client.import_profiles, profiles(), skip_invalid=True)
        with pytest.raises(RuntimeError, match="file vanished"):
            await asyncio.to_thread(client.import_profiles, broken())
        with pytest.raises(NotFound):
            await asyncio.to_thread(client.get_profile, "b")
        stored = await asyncio.to_thread(client.get_profile, "a")
        await asyncio.to_thread(client.delete_profile, "a")
        with pytest.raises(NotFound):
            await asyncio.to_thread(client.evaluate_user, "a")
    assert refused.value.field == "profiles[2].user_id"
    assert (skipped.imported, [problem.index for problem in skipped.problems]) == (1, [2])
    assert stored.traits == {"plan": "free"}


def test_client__no_server__unavailable_after_retries_within_the_deadline():
    with Client("127.0.0.1:9", timeout=3) as client, pytest.raises(Unavailable):
        client.get_segment("free")


def test_client__target_and_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("SEGMENTD_TARGET", "example.invalid:1234")
    monkeypatch.setenv("SEGMENTD_API_KEY", "k1")
    with Client() as client:
        assert client.target == "example.invalid:1234"
        assert client._settings.metadata == (("authorization", "Bearer k1"),)
    with Client("other:1", api_key="k2") as client:
        assert (client.target, client._settings.metadata) == ("other:1", (("authorization", "Bearer k2"),))


def test_service_config__retries_only_calls_safe_to_repeat():
    (config,) = SERVICE_CONFIG["methodConfig"]
    retried = {name["method"] for name in config["name"]}
    assert config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert {"GetSegment", "EvaluateUser", "ListSegmentMembers", "UpsertProfile"} <= retried
    assert not retried & {"CreateSegment", "UpdateSegment", "RecordEvents", "ImportProfiles", "DeleteSegment"}

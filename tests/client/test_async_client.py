"""AsyncClient against a real server: every helper, its plain values and its errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from segmentd_client import (
    AsyncClient,
    Event,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Profile,
)
from tests.client.conftest import FREE, UPGRADE_CANDIDATES


async def test_apply_segment__new_same_changed__created_unchanged_updated(client: AsyncClient):
    # When
    created = await client.apply_segment(FREE)
    unchanged = await client.apply_segment(FREE)
    updated = await client.apply_segment({**FREE, "description": "Free plan users"})
    # Then
    assert (created.action, created.version) == ("created", 1)
    assert (unchanged.action, unchanged.previous_version, unchanged.version) == ("unchanged", 1, 1)
    assert str(updated) == "updated free (v1 -> v2)"
    segment = await client.get_segment("free")
    assert (segment.version, segment.description, dict(segment.labels)) == (
        2,
        "Free plan users",
        {"team": "growth"},
    )
    assert segment.rule == FREE["rule"]
    assert segment.definition() == {**FREE, "description": "Free plan users"}


async def test_apply_segment__dry_run__nothing_written(client: AsyncClient):
    # When
    would_create = await client.apply_segment(FREE, dry_run=True)
    # Then
    assert (str(would_create), would_create.dry_run) == ("created free", True)
    with pytest.raises(NotFound):
        await client.get_segment("free")
    await client.apply_segment(FREE)
    would_update = await client.apply_segment({**FREE, "labels": {}}, dry_run=True)
    assert str(would_update) == "updated free (v1 -> v2)"
    assert (await client.get_segment("free")).version == 1


async def test_apply_segments__yaml_and_json_files__referenced_segment_first(
    client: AsyncClient, tmp_path: Path
):
    # Given: the referrer's file sorts first
    (tmp_path / "a-upgrade.json").write_text(json.dumps(UPGRADE_CANDIDATES))
    (tmp_path / "b-free.yaml").write_text(
        "name: free\nrule:\n  condition: {attribute: plan, operator: EQUALS, value: free}\n"
    )
    # When
    results = await client.apply_segments(tmp_path)
    again = await client.apply_segments(tmp_path)
    # Then
    assert [str(result) for result in results] == ["created free", "created upgrade-candidates"]
    assert [str(result) for result in again] == ["unchanged free", "unchanged upgrade-candidates"]


async def test_apply_segment__invalid_rule__invalid_argument_names_the_node(client: AsyncClient):
    bad = {
        "name": "bad",
        "rule": {"all": {"rules": [{"condition": {"attribute": "mrr", "operator": "LESS_THAN"}}]}},
    }
    with pytest.raises(InvalidArgument) as raised:
        await client.apply_segment(bad)
    assert raised.value.field.startswith("segment.rule.all.rules[0].condition")
    assert raised.value.reason


async def test_apply_segments__one_refused__none_written_dry_run_checked_alike(client: AsyncClient):
    # Given: the second references the first; the third tests a list that does not exist
    unlisted = {"name": "unlisted", "rule": {"in_list": {"name": "no-such-list"}}}
    definitions = [FREE, UPGRADE_CANDIDATES, unlisted]
    for dry_run in (True, False):
        # When
        with pytest.raises(InvalidArgument) as raised:
            await client.apply_segments(definitions, dry_run=dry_run)
        # Then
        assert raised.value.field.startswith("requests[2].segment.rule")
        assert await client.list_segments() == []
    # And without the bad one, the dry run passes (the reference is to the batch) and writes nothing
    planned = await client.apply_segments(definitions[:2], dry_run=True)
    assert [(r.action, r.dry_run) for r in planned] == [("created", True), ("created", True)]
    assert await client.list_segments() == []


async def test_apply_segments__only_one_changed_and_refused__error_names_that_definition(client: AsyncClient):
    # Given: two segments already as defined, and a third definition that is refused
    await client.apply_segments([FREE, UPGRADE_CANDIDATES])
    dangling = {"name": "dangling", "rule": {"segment": {"name": "nowhere"}}}
    # When: the three are applied again
    with pytest.raises(InvalidArgument) as raised:
        await client.apply_segments([FREE, UPGRADE_CANDIDATES, dangling])
    # Then: the refusal says which definition it was, though it was the only change
    assert raised.value.field.startswith("requests[0].segment.rule")
    assert "segment 'dangling'" in raised.value.reason


async def test_list_get_delete_segments(client: AsyncClient):
    # Given
    await client.apply_segments(
        [FREE, UPGRADE_CANDIDATES, {**FREE, "name": "other", "labels": {"team": "billing"}}]
    )
    # When
    growth = await client.list_segments(labels={"team": "growth"})
    # Then
    assert [segment.name for segment in growth] == ["free", "upgrade-candidates"]
    with pytest.raises(FailedPrecondition):
        await client.delete_segment("free")
    await client.delete_segment("upgrade-candidates")
    with pytest.raises(NotFound):
        await client.get_segment("upgrade-candidates")
    assert (await client.get_segment("upgrade-candidates", version=1)).version == 1


async def test_profiles_events_and_evaluation(client: AsyncClient):
    # Given
    await client.apply_segments([FREE, UPGRADE_CANDIDATES])
    stored = await client.upsert_profile(
        "u1", {"plan": "free", "seats_used_pct": 85, "company": {"size": 12}}
    )
    # When
    verdict = await client.evaluate_user("u1")
    strong = await client.evaluate_user("u1", ["free"], consistency="strong")
    inline = await client.evaluate_profile({"plan": "free", "seats_used_pct": 10})
    # Then
    assert isinstance(stored, Profile) and stored.traits["company"] == {"size": 12}
    assert verdict.segments == ("free", "upgrade-candidates")
    assert "free" in strong and strong.segments == ("free",)
    assert verdict.evaluated_at is not None and verdict.evaluated_at.tzinfo is UTC
    assert inline.segments == ("free",) and inline.profile_read_at is None


async def test_upsert_profile__merge_and_replace(client: AsyncClient):
    await client.upsert_profile("u1", {"plan": "free", "mrr": 10})
    merged = await client.upsert_profile("u1", {"mrr": None, "country": "FR"})
    replaced = await client.upsert_profile("u1", {"plan": "pro"}, replace=True)
    assert merged.traits == {"plan": "free", "country": "FR"}
    assert replaced.traits == {"plan": "pro"}
    assert (await client.get_profile("u1")).traits == {"plan": "pro"}
    await client.delete_profile("u1")
    with pytest.raises(NotFound):
        await client.get_profile("u1")


async def test_record_events__counted_by_event_conditions(client: AsyncClient):
    # Given
    await client.apply_segment(
        {
            "name": "inviters",
            "rule": {
                "event": {
                    "name": "invite_sent",
                    "operator": "GREATER_THAN_OR_EQUALS",
                    "count": 3,
                    "within_days": 30,
                }
            },
        }
    )
    await client.upsert_profile("u1", {})
    yesterday = datetime.now(UTC) - timedelta(days=1)
    # When
    recorded = await client.record_events(
        [Event("u1", "invite_sent", 2, yesterday), Event("u1", "invite_sent")]
    )
    # Then
    assert recorded == 2
    assert (await client.evaluate_user("u1")).segments == ("inviters",)
    with pytest.raises(InvalidArgument) as raised:
        await client.record_events([Event("u1", "invite_sent", count=-1)])
    assert raised.value.field == "events[0].count"


async def test_explain__tree_with_verdicts_and_values(client: AsyncClient):
    # Given
    await client.apply_segments([FREE, UPGRADE_CANDIDATES])
    await client.upsert_profile("u1", {"plan": "free", "seats_used_pct": 40})
    # When
    why = await client.explain("u1", "upgrade-candidates")
    # Then
    assert (why.segment_name, why.segment_version, why.matched) == ("upgrade-candidates", 1, False)
    reference, seats = why.root.children
    assert (why.root.kind, reference.kind, seats.kind) == ("all", "segment", "condition")
    assert reference.matched and reference.children[0].actual_value == "free"
    assert not seats.matched and seats.actual_value == 40 and seats.attribute_present
    assert "rules" not in why.root.rule["all"]


async def test_explain__unknown_user__not_found(client: AsyncClient):
    await client.apply_segment(FREE)
    with pytest.raises(NotFound):
        await client.explain("nobody", "free")


async def test_members_and_count(client: AsyncClient):
    # Given
    await client.apply_segment(FREE)
    await client.import_profiles(
        {"user_id": f"u{n:02}", "traits": {"plan": "free" if n % 2 else "pro"}} for n in range(10)
    )
    # When
    members = [user_id async for user_id in client.iter_members("free")]
    first = [chunk async for chunk in client.iter_member_chunks("free", page_size=2)]
    rest = [user_id async for user_id in client.iter_members("free", page_token=first[-1].next_page_token)]
    # Then
    assert members == ["u01", "u03", "u05", "u07", "u09"]
    assert [user_id for chunk in first for user_id in chunk.user_ids] == ["u01", "u03"]
    assert rest == ["u05", "u07", "u09"]
    assert await client.count_members("free") == 5
    with pytest.raises(NotFound):
        await client.count_members("nope")


async def test_import_profiles__dicts_and_profiles__all_stored(client: AsyncClient):
    async def profiles() -> AsyncIterator[dict[str, object] | Profile]:
        yield {"user_id": "a", "traits": {"plan": "free"}}
        yield Profile("b", {"plan": "pro"})

    result = await client.import_profiles(profiles(), batch_size=1)

    assert (result.imported, result.skipped, result.problems) == (2, 0, ())
    assert (await client.get_profile("b")).traits == {"plan": "pro"}


async def test_import_profiles__server_refuses_one__position_in_the_callers_terms(client: AsyncClient):
    # Given: the 2nd profile is too large to send, so the server's 2nd is the caller's 3rd
    profiles = [
        {"user_id": "a", "traits": {}},
        {"user_id": "big", "traits": {"blob": "x" * (1024 * 1024 + 10)}},
        {"user_id": "", "traits": {}},
    ]
    # When
    with pytest.raises(InvalidArgument) as refused:
        await client.import_profiles(profiles[::2][:1] + profiles[2:])
    skipped = await client.import_profiles(profiles, skip_invalid=True)
    # Then
    assert refused.value.field == "profiles[2].user_id"
    assert skipped.imported == 1 and skipped.skipped == 2
    assert [(problem.index, problem.field) for problem in skipped.problems] == [(2, "traits"), (3, "user_id")]


def _nested(levels: int) -> object:
    value: object = "leaf"
    for _ in range(levels):
        value = [value]
    return value


async def test_import_profiles__traits_too_deep_to_convert__refused_at_its_position(client: AsyncClient):
    # Given: the 2nd profile's traits nest deeper than protobuf's conversion can recurse
    profiles = [
        {"user_id": "a", "traits": {"plan": "free"}},
        {"user_id": "deep", "traits": {"tree": _nested(5000)}},
        {"user_id": "c", "traits": {"plan": "pro"}},
    ]
    # When
    with pytest.raises(InvalidArgument) as refused:
        await client.import_profiles(profiles)
    with pytest.raises(NotFound):
        await client.get_profile("a")  # the refusal sent nothing
    skipped = await client.import_profiles(profiles, skip_invalid=True)
    # Then
    assert refused.value.field == "profiles[2].traits"
    assert "nested too deeply" in refused.value.reason
    assert (skipped.imported, skipped.skipped) == (2, 1)
    assert [(problem.index, problem.field) for problem in skipped.problems] == [(2, "traits")]
    assert (await client.get_profile("c")).traits == {"plan": "pro"}


async def test_import_profiles__callers_iterable_fails__nothing_stored(client: AsyncClient):
    def profiles() -> Iterator[dict[str, object]]:
        yield {"user_id": "a", "traits": {}}
        raise RuntimeError("file vanished")

    with pytest.raises(RuntimeError, match="file vanished"):
        await client.import_profiles(profiles())
    with pytest.raises(NotFound):
        await client.get_profile("a")


async def test_evaluate_user__freshness_and_strong__mapped_from_the_server(client: AsyncClient):
    # Given
    await client.apply_segment(FREE)
    await client.upsert_profile("u1", {"plan": "free"})
    # When: evaluated until answered from the cache (on PostgreSQL the upsert's own
    # notification may drop the first cached entry), then with STRONG
    for _ in range(50):
        first = await client.evaluate_user("u1")
        await asyncio.sleep(0.1)
        cached = await client.evaluate_user("u1")
        if cached.profile_read_at == first.profile_read_at:
            break
    strong = await client.evaluate_user("u1", consistency="strong")
    # Then: the cached answer keeps its read time; a STRONG one reads again
    assert first.segments == cached.segments == strong.segments == ("free",)
    assert first.profile_read_at is not None and first.segments_read_at is not None
    assert cached.profile_read_at == first.profile_read_at
    assert strong.profile_read_at is not None and strong.profile_read_at > first.profile_read_at

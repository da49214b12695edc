"""`segmentd eval | explain | members | count | profile | events` against a real server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segmentd.cli.common import EXIT_INVALID, EXIT_NOT_FOUND, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from segmentd_client import AsyncClient
from tests.cli.conftest import Segmentd, run_segmentd

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
async def loaded(segmentd: Segmentd) -> Segmentd:
    """The example segments and profiles, and three invites for user-42."""
    assert (await segmentd("apply", "-f", str(EXAMPLES / "segments"))).status == EXIT_OK
    assert (await segmentd("import", str(EXAMPLES / "profiles.csv"))).status == EXIT_OK
    assert (
        await segmentd("events", "record", "user-42", "invite_sent", "--count", "3")
    ).out == "recorded 1 event\n"
    return segmentd


async def test_eval__names_one_per_line_and_json(loaded: Segmentd):
    text = await loaded("eval", "user-42")
    only = await loaded("eval", "user-42", "--segment", "promoters", "--segment", "free-plan", "-o", "json")
    assert text.out.splitlines() == ["detractors", "free-plan", "upgrade-candidates"]
    document = json.loads(only.out)
    assert (document["user_id"], document["segments"]) == ("user-42", ["free-plan"])
    assert document["evaluated_at"].endswith("Z")
    assert (await loaded("eval", "user-42", "--consistency", "strong")).out == text.out


async def test_eval__unknown_user_or_segment__not_found(loaded: Segmentd):
    unknown = await loaded("eval", "nobody")
    assert (unknown.status, unknown.out) == (EXIT_NOT_FOUND, "")
    assert "nobody" in unknown.err and "Traceback" not in unknown.err
    assert (await loaded("eval", "user-42", "--segment", "nope")).status == EXIT_NOT_FOUND


async def test_explain__tree_with_marks_and_values(loaded: Segmentd):
    result = await loaded("explain", "user-3", "upgrade-candidates")
    lines = result.out.splitlines()
    assert lines[0] == "✗ user-3 is not a member of upgrade-candidates (v1)"
    assert lines[1].endswith("✗ all: 1 of 3 rules hold")
    assert any("✓ a member of segment 'free-plan'" in line for line in lines)
    assert any('✓ plan = "free"' in line for line in lines)
    assert any("✗ seats_used_pct = 20: GREATER_THAN_OR_EQUALS 80 does not hold" in line for line in lines)
    assert any("✗ 'invite_sent' events in the last 30 days: 0" in line for line in lines)


async def test_members__csv_jsonl_and_count(loaded: Segmentd, tmp_path: Path):
    csv_out = await loaded("members", "free-plan")
    output = tmp_path / "members.jsonl"
    jsonl = await loaded("members", "free-plan", "--format", "jsonl", "--output", str(output))
    counted = await loaded("count", "free-plan")
    assert csv_out.out.splitlines() == ["user_id", "user-1", "user-2", "user-3", "user-42"]
    assert jsonl.out == "" and "wrote 4 members" in jsonl.err
    assert [json.loads(line)["user_id"] for line in output.read_text().splitlines()] == [
        "user-1",
        "user-2",
        "user-3",
        "user-42",
    ]
    assert not (tmp_path / "members.jsonl.token").exists()
    assert counted.out == "4\n"
    assert (await loaded("count", "nope")).status == EXIT_NOT_FOUND


async def test_members__resume__continues_after_the_saved_token_without_repeats(
    loaded: Segmentd, target: str, tmp_path: Path
):
    # Given: an export interrupted after its first two members, with a row written after
    # the token was saved (the server's real token for that point, from a page of two)
    async with AsyncClient(target) as client:
        first_page = [chunk async for chunk in client.iter_member_chunks("free-plan", page_size=2)]
    output = tmp_path / "members.csv"
    output.write_text("user_id\nuser-1\nuser-2\nhalf-writ")
    state = {"segment": "free-plan", "next_page_token": first_page[-1].next_page_token, "output_bytes": 22}
    (tmp_path / "members.csv.token").write_text(json.dumps(state))
    # When
    resumed = await loaded("members", "free-plan", "--output", str(output), "--resume")
    # Then
    assert resumed.status == EXIT_OK
    assert "wrote 2 members" in resumed.err
    assert output.read_text().splitlines() == ["user_id", "user-1", "user-2", "user-3", "user-42"]
    assert not (tmp_path / "members.csv.token").exists()


@pytest.mark.parametrize(
    ("sidecar", "message"),
    [
        (None, "nothing to resume"),
        ("{not json", "not a token file"),
        ('{"segment": "other"}', "is for segment 'other'"),
    ],
)
async def test_members__cannot_resume__usage_error(
    loaded: Segmentd, tmp_path: Path, sidecar: str | None, message: str
):
    output = tmp_path / "members.csv"
    if sidecar is not None:
        (tmp_path / "members.csv.token").write_text(sidecar)
    result = await loaded("members", "free-plan", "--output", str(output), "--resume")
    assert (result.status, message in result.err) == (EXIT_USAGE, True)


async def test_profile_get_and_set__merge_and_replace(segmentd: Segmentd):
    created = await segmentd("profile", "set", "u1", "--traits", '{"plan": "free", "mrr": 10}')
    merged = await segmentd("profile", "set", "u1", "--traits", '{"mrr": null, "country": "FR"}')
    replaced = await segmentd("profile", "set", "u1", "--traits", '{"plan": "pro"}', "--replace")
    shown = await segmentd("profile", "get", "u1")
    assert json.loads(created.out)["traits"] == {"plan": "free", "mrr": 10}
    assert json.loads(merged.out)["traits"] == {"plan": "free", "country": "FR"}
    assert json.loads(replaced.out)["traits"] == {"plan": "pro"}
    assert json.loads(shown.out)["user_id"] == "u1"
    assert (await segmentd("profile", "get", "u2")).status == EXIT_NOT_FOUND
    assert (await segmentd("profile", "set", "u1", "--traits", "[1]")).status == EXIT_USAGE
    assert (await segmentd("profile", "set", "u1", "--traits", "{")).status == EXIT_USAGE


@pytest.mark.parametrize("depth", [400, 100_000])  # past what protobuf, or the JSON parser, recurses
async def test_profile_set__traits_nested_too_deep__invalid_without_a_traceback(segmentd: Segmentd, depth):
    deep = '{"a": ' + "[" * depth + "]" * depth + "}"
    result = await segmentd("profile", "set", "u1", "--traits", deep)
    assert result.status == EXIT_INVALID
    assert "nested too deeply" in result.err and "Traceback" not in result.err


async def test_events_record__time_checked_and_unknown_user_refused(segmentd: Segmentd):
    await segmentd("profile", "set", "u1", "--traits", "{}")
    timed = await segmentd(
        "events", "record", "u1", "login", "--count", "2", "--time", "2026-11-30T09:00:00Z"
    )
    assert timed.out == "recorded 1 event\n"
    assert (await segmentd("events", "record", "u1", "login", "--time", "yesterday")).status == EXIT_USAGE
    assert (
        await segmentd("events", "record", "u1", "login", "--time", "2026-11-30T09:00:00")
    ).status == EXIT_USAGE
    assert (await segmentd("events", "record", "u1", "login", "--count", "0")).status == EXIT_USAGE
    unknown = await segmentd("events", "record", "nobody", "login")
    assert unknown.status in (EXIT_INVALID, EXIT_NOT_FOUND) and "nobody" in unknown.err


async def test_client_command__no_server__exit_3_without_traceback(capsys: pytest.CaptureFixture[str]):
    result = await run_segmentd(capsys)("count", "free-plan", "--target", "127.0.0.1:9", "--timeout", "3")
    assert result.status == EXIT_UNREACHABLE
    assert result.err.startswith("segmentd: cannot reach a segmentd server at 127.0.0.1:9")
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    "command",
    [
        "apply",
        "get",
        "list",
        "delete",
        "diff",
        "eval",
        "explain",
        "members",
        "count",
        "import",
        "serve",
        "migrate",
    ],
)
async def test_help__every_command_teaches_with_an_example(capsys: pytest.CaptureFixture[str], command: str):
    result = await run_segmentd(capsys)(command, "--help")
    assert result.status == EXIT_OK
    assert "Example:" in result.out and f"segmentd {command}" in result.out.split("Example:")[1]

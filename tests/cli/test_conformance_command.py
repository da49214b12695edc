"""``segmentd conformance``: the published cases replayed on a real server, on both stores."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from segmentd.cli.common import EXIT_INVALID, EXIT_OK
from segmentd_client import Client
from tests.cli.conftest import Segmentd

CASES = Path(__file__).parents[2] / "conformance" / "cases"


async def _call(target: str, method: str, *args: Any) -> Any:
    """One typed-client call, off the event loop the in-process server runs on."""

    def call() -> Any:
        with Client(target) as client:
            return getattr(client, method)(*args)

    return await asyncio.to_thread(call)


async def test_conformance__published_cases__none_fails_and_nothing_is_left(segmentd: Segmentd, target: str):
    # When
    run = await segmentd("conformance", "--cases", str(CASES))
    # Then
    assert run.status == EXIT_OK, run.out + run.err
    passed, failed, skipped = (int(word) for word in run.out.splitlines()[-1].split()[::2])
    assert failed == 0 and passed + skipped == len(list(CASES.glob("*.json")))
    # What conformance/README.md shows is what it prints: only the clock-bound and
    # percentile cases are skipped.
    shown = (
        (CASES.parent / "README.md").read_text().split("$ segmentd conformance --target localhost:50051\n")[1]
    )
    assert run.out == shown.split("```")[0]
    assert await _call(target, "list_segments") == []


async def test_conformance__wrong_expectation__fails_with_exit_1(segmentd: Segmentd, tmp_path: Path):
    # Given: a published case with its verdict flipped
    case = json.loads((CASES / "segment-reference.json").read_text())
    case["expected"] = not case["expected"]
    (tmp_path / "flipped.json").write_text(json.dumps(case))
    # When
    run = await segmentd("conformance", "--cases", str(tmp_path))
    # Then
    assert run.status == EXIT_INVALID
    assert run.out.splitlines() == [
        f"FAIL  flipped: expected {case['expected']}, got {not case['expected']}",
        "0 passed, 1 failed, 0 skipped",
    ]


async def test_conformance__user_id_already_stored__skipped_untouched(
    segmentd: Segmentd, target: str, tmp_path: Path
):
    # Given: the server already holds the case's user
    case = json.loads((CASES / "equals-string.json").read_text())
    (tmp_path / "taken.json").write_text(json.dumps(case))
    await _call(target, "upsert_profile", case["profile"]["user_id"], {"kept": True})
    # When
    run = await segmentd("conformance", "--cases", str(tmp_path))
    # Then
    assert run.status == EXIT_OK
    assert "SKIP  taken: user id" in run.out
    assert (await _call(target, "get_profile", case["profile"]["user_id"])).traits == {"kept": True}

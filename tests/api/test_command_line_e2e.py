"""The command line and the billing script against a real server and database.

`segmentd import FILE` loads profiles through ImportProfiles, then
`scripts/upgrade_candidates.py` streams the segment's members to CSV with the generated
client only, page by page, resuming with the saved token.
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import grpc
import pytest

from segmentd.importer_cli import main as import_main
from segmentd.server import RunningServer
from segmentd_client.v1 import evaluation_pb2, profiles_pb2
from tests.api.conftest import create_segment

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "upgrade_candidates.py"

CSV = """user_id,plan,seats_used_pct:number,company.size:integer,beta:boolean
u1,free,85,12,true
u2,free,40,3,false
u3,pro,99,500,
u4,free,80,,yes
u5,FREE,95,7,no
"""


def _script_main(argv: list[str]) -> int:
    spec = importlib.util.spec_from_file_location("upgrade_candidates", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return int(module.main(argv))


@pytest.fixture
async def target(server: RunningServer, segments) -> str:
    await create_segment(
        segments,
        {
            "name": "upgrade-candidates",
            "rule": {
                "all": {
                    "rules": [
                        {
                            "condition": {
                                "attribute": "plan",
                                "operator": "EQUALS",
                                "value": "free",
                                "ignore_case": True,
                            }
                        },
                        {
                            "condition": {
                                "attribute": "seats_used_pct",
                                "operator": "GREATER_THAN_OR_EQUALS",
                                "value": 80,
                            }
                        },
                    ]
                }
            },
        },
    )
    return f"127.0.0.1:{server.port}"


async def test_import_then_members_to_csv__resumable(target: str, profiles, evaluation, tmp_path: Path):
    # Given: a CSV file imported with `segmentd import`
    source = tmp_path / "profiles.csv"
    source.write_text(CSV, encoding="utf-8")
    assert await asyncio.to_thread(import_main, [str(source), "--target", target]) == 0
    stored = await profiles.GetProfile(profiles_pb2.GetProfileRequest(user_id="u1"))
    assert dict(stored.traits) == {
        "plan": "free",
        "seats_used_pct": 85,
        "company": {"size": 12},
        "beta": True,
    }

    # When: the billing script pulls the members two at a time, resuming each time
    output = tmp_path / "members.csv"
    first = await asyncio.to_thread(
        _script_main, ["--target", target, "--output", str(output), "--page-size", "2"]
    )
    rest = await asyncio.to_thread(_script_main, ["--target", target, "--output", str(output), "--resume"])

    # Then: exactly the members the evaluator sees, each once
    assert (first, rest) == (0, 0)
    expected = []
    for user_id in ("u1", "u2", "u3", "u4", "u5"):
        verdict = await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id=user_id))
        if "upgrade-candidates" in verdict.segments:
            expected.append(user_id)
    assert output.read_text(encoding="utf-8").splitlines() == ["user_id", *expected]
    assert expected == ["u1", "u4", "u5"]


async def test_import__invalid_row__nothing_stored_and_its_line_named(
    target: str, profiles, tmp_path: Path, capsys
):
    source = tmp_path / "profiles.jsonl"
    source.write_text(
        '{"user_id": "a", "traits": {"plan": "free"}}\n'
        '{"user_id": "", "traits": {"plan": "free"}}\n'
        '{"user_id": "c", "traits": {"plan": "pro"}}\n',
        encoding="utf-8",
    )

    status = await asyncio.to_thread(import_main, [str(source), "--target", target])

    assert status == 1
    assert "profiles.jsonl:2: user_id" in capsys.readouterr().err
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await profiles.GetProfile(profiles_pb2.GetProfileRequest(user_id="a"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_import__skip_invalid__valid_rows_stored(target: str, profiles, tmp_path: Path):
    source = tmp_path / "profiles.jsonl"
    source.write_text('{"user_id": "a", "traits": {}}\n{"user_id": "", "traits": {}}\n', encoding="utf-8")

    status = await asyncio.to_thread(import_main, [str(source), "--target", target, "--skip-invalid"])

    assert status == 0
    assert (await profiles.GetProfile(profiles_pb2.GetProfileRequest(user_id="a"))).user_id == "a"

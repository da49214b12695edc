"""`segmentd import` then the billing script, against a real server and database.

`segmentd import FILE` loads profiles through ImportProfiles, then
`scripts/upgrade_candidates.py` streams the segment's members to CSV, page by page,
resuming with the saved token.
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

from segmentd_client import AsyncClient
from tests.cli.conftest import Segmentd

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "upgrade_candidates.py"

CSV = """user_id,plan,seats_used_pct:number,company.size:integer,beta:boolean
u1,free,85,12,true
u2,free,40,3,false
u3,pro,99,500,
u4,free,80,,yes
u5,FREE,95,7,no
"""

UPGRADE_CANDIDATES = {
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
}


def _script_main(argv: list[str]) -> int:
    spec = importlib.util.spec_from_file_location("upgrade_candidates", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return int(module.main(argv))


async def test_import_then_members_to_csv__resumable(segmentd: Segmentd, target: str, tmp_path: Path):
    # Given: a CSV file imported with `segmentd import`
    source = tmp_path / "profiles.csv"
    source.write_text(CSV, encoding="utf-8")
    assert (await segmentd("import", str(source))).status == 0
    async with AsyncClient(target) as client:
        await client.apply_segment(UPGRADE_CANDIDATES)
        stored = await client.get_profile("u1")
        assert stored.traits == {"plan": "free", "seats_used_pct": 85, "company": {"size": 12}, "beta": True}

        # When: the billing script pulls the members two at a time, resuming each time
        output = tmp_path / "members.csv"
        first = await asyncio.to_thread(
            _script_main, ["--target", target, "--output", str(output), "--page-size", "2"]
        )
        rest = await asyncio.to_thread(
            _script_main, ["--target", target, "--output", str(output), "--resume"]
        )

        # Then: exactly the members the evaluator sees, each once
        assert (first, rest) == (0, 0)
        expected = [
            user_id
            for user_id in ("u1", "u2", "u3", "u4", "u5")
            if "upgrade-candidates" in await client.evaluate_user(user_id)
        ]
    assert output.read_text(encoding="utf-8").splitlines() == ["user_id", *expected]
    assert expected == ["u1", "u4", "u5"]

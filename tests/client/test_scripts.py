"""scripts/quickstart.py, run as written against a real server."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "quickstart.py"


async def test_quickstart__creates_evaluates_and_explains(target: str, capsys: pytest.CaptureFixture[str]):
    spec = importlib.util.spec_from_file_location("quickstart", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    await asyncio.to_thread(module.main, target)
    await asyncio.to_thread(module.main, target)

    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        "created upgrade-candidates",
        "evaluate_profile: ()",
        "evaluate_user: ('upgrade-candidates',)",
    ]
    assert lines[3:7] == [
        "explain:",
        '  ✓ plan = "free": EQUALS "free" holds',
        "  ✓ seats_used_pct = 92: GREATER_THAN_OR_EQUALS 80 holds",
        "  ✓ 'invite_sent' events in the last 30 days: 3; GREATER_THAN_OR_EQUALS 3 holds",
    ]
    assert lines[7] == "count_members: 1"
    assert lines[8] == "unchanged upgrade-candidates"

"""``pip install ./client`` alone gives a working client: no server, no SQLAlchemy, no CLI libraries."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from segmentd.server import RunningServer

CLIENT_DIR = Path(__file__).resolve().parents[2] / "client"

SCRIPT = textwrap.dedent(
    """
    import sys
    from segmentd_client import Client

    with Client(sys.argv[1]) as client:
        client.upsert_profile("u1", {"plan": "free"})
        print(client.evaluate_user("u1", consistency="strong").segments)
    server_side = [m for m in sys.modules if m.split(".")[0] in ("segmentd", "sqlalchemy", "click", "rich")]
    assert not server_side, server_side
    """
)


@pytest.mark.skipif(shutil.which("uv") is None, reason="needs uv to build an isolated environment")
async def test_client_alone__installed_in_a_fresh_environment__evaluates_against_a_server(
    tmp_path: Path, server: RunningServer
):
    # Given: a new virtual environment holding only the client distribution and what it needs
    venv = tmp_path / "venv"
    subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(["uv", "pip", "install", "-q", "--python", str(python), str(CLIENT_DIR)], check=True)
    # When: a script uses it against a running server
    process = await asyncio.create_subprocess_exec(
        str(python), "-c", SCRIPT, f"127.0.0.1:{server.port}", stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), 60)
    # Then
    assert process.returncode == 0
    assert stdout.decode().strip() == "()"

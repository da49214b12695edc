"""``segmentd import``: file to profiles on a real server, exit codes, file lines in messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from segmentd.cli.common import EXIT_INVALID, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from segmentd.cli.importing import LineMap
from segmentd.import_formats import RowError
from segmentd_client import AsyncClient, NotFound
from tests.cli.conftest import Segmentd


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
async def client(target: str):
    async with AsyncClient(target) as client:
        yield client


async def test_import__csv_replace__typed_traits_stored_and_summary(
    segmentd: Segmentd, client: AsyncClient, tmp_path: Path
):
    # Given: u1 exists with a trait the file does not have
    await client.upsert_profile("u1", {"old": True})
    path = _write(tmp_path, "users.csv", "user_id,plan,mrr:number\nu1,free,10\nu2,pro,\nu3,,2.5\n")
    # When
    result = await segmentd("import", str(path), "--replace", "--batch-size", "2", "--progress")
    # Then
    assert result.status == EXIT_OK
    assert "importing: 3 rows" in result.err
    assert f"imported 3 profiles from {path}" in result.out
    assert (await client.get_profile("u1")).traits == {"plan": "free", "mrr": 10}
    assert (await client.get_profile("u2")).traits == {"plan": "pro"}
    assert (await client.get_profile("u3")).traits == {"mrr": 2.5}


async def test_import__merge_by_default(segmentd: Segmentd, client: AsyncClient, tmp_path: Path):
    await client.upsert_profile("u1", {"old": True})
    path = _write(tmp_path, "users.jsonl", '{"user_id": "u1", "traits": {"plan": "free"}}\n')
    result = await segmentd("import", str(path))
    assert (result.status, result.err) == (EXIT_OK, "")  # no progress bar when not a terminal
    assert (await client.get_profile("u1")).traits == {"old": True, "plan": "free"}


async def test_import__empty_file_body__nothing_imported(segmentd: Segmentd, tmp_path: Path):
    path = _write(tmp_path, "users.jsonl", "\n")
    result = await segmentd("import", str(path), "--skip-invalid")
    assert (result.status, result.out.strip()) == (EXIT_OK, f"imported 0 profiles from {path}")


async def test_import__skip_invalid__server_positions_shown_as_file_lines(
    segmentd: Segmentd, client: AsyncClient, tmp_path: Path
):
    # Given: line 3 is unreadable here, so the server's 2nd profile is line 5
    path = _write(tmp_path, "users.csv", "user_id,n:integer\nu1,1\nu2,x\n\n,4\nu5,5\n")
    # When
    result = await segmentd("import", str(path), "--skip-invalid")
    # Then
    assert result.status == EXIT_OK
    errors = result.err.splitlines()
    assert errors[0] == f"{path}:3: n:integer: 'x' is not an integer"
    assert errors[1].startswith(f"{path}:5: user_id: ")
    assert f"imported 2 profiles from {path}; skipped 2 invalid rows" in result.out
    assert (await client.get_profile("u5")).traits == {"n": 5}


async def test_import__unreadable_rows__nothing_stored_and_all_bad_lines_listed(
    segmentd: Segmentd, client: AsyncClient, tmp_path: Path
):
    # Given
    path = _write(tmp_path, "users.jsonl", '{"user_id": "a"}\n{oops\n{"user_id": "b"}\n[]\n')
    # When
    result = await segmentd("import", str(path), "--batch-size", "1")
    # Then
    assert result.status == EXIT_INVALID
    assert f"{path}:2: json: not valid JSON" in result.err
    assert f"{path}:4: json: each line must be a JSON object" in result.err
    assert "2 invalid rows; nothing was imported" in result.err
    with pytest.raises(NotFound):
        await client.get_profile("a")


async def test_import__server_refuses_a_profile__its_line_named(
    segmentd: Segmentd, client: AsyncClient, tmp_path: Path
):
    path = _write(tmp_path, "users.csv", 'user_id\nu1\n\n\n""\n')
    result = await segmentd("import", str(path), "--format", "csv")
    assert result.status == EXIT_INVALID
    assert f"{path}:5: user_id: " in result.err
    with pytest.raises(NotFound):
        await client.get_profile("u1")


async def test_import__no_server__exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from tests.cli.conftest import run_segmentd

    path = _write(tmp_path, "users.csv", "user_id\nu1\n")
    result = await run_segmentd(capsys)(
        "import", str(path), "--target", "127.0.0.1:9", "--connect-timeout", "0.2"
    )
    assert result.status == EXIT_UNREACHABLE
    assert "cannot reach a segmentd server at 127.0.0.1:9" in result.err


@pytest.mark.parametrize(
    ("name", "text", "status", "message"),
    [
        pytest.param("users.txt", "user_id\n", EXIT_USAGE, "unknown file type", id="unknown-type"),
        pytest.param(None, "", EXIT_USAGE, "No such file", id="missing-file"),
        pytest.param("users.csv", "plan\nfree\n", EXIT_INVALID, "exactly one 'user_id'", id="bad-header"),
        pytest.param("users.csv", b"user_id\n\xff\n", EXIT_INVALID, "not UTF-8", id="not-utf8"),
    ],
)
async def test_import__bad_input__exit_status_and_message(
    segmentd: Segmentd, tmp_path: Path, name: str | None, text: str | bytes, status: int, message: str
):
    path = tmp_path / (name or "missing.csv")
    if name is not None:
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    result = await segmentd("import", str(path))
    assert result.status == status
    assert message in result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    "arguments", [["users.csv", "--batch-size", "0"], ["users.csv", "--format", "xml"], []]
)
async def test_import__bad_arguments__usage_error(capsys: pytest.CaptureFixture[str], arguments: list[str]):
    from tests.cli.conftest import run_segmentd

    result = await run_segmentd(capsys)("import", *arguments)
    assert result.status == EXIT_USAGE
    assert "Usage: segmentd import" in result.err


def test_line_map__positions_to_lines() -> None:
    # Given
    lines = LineMap()
    for line in [2, 3, 4, 7, 8, 12]:
        lines.add(line)
    # Then
    assert [lines.line_of(index) for index in range(0, 8)] == [None, 2, 3, 4, 7, 8, 12, None]
    assert lines.locate("profiles[4].traits.x: too big") == (7, "traits.x: too big")
    assert lines.locate("profiles[9].user_id: bad") == (None, "profiles[9].user_id: bad")
    assert lines.locate("something else") == (None, "something else")
    assert RowError(1, "a", "b").line == 1

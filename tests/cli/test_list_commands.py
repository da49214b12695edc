"""``segmentd lists``: user lists from the command line, against a real server."""

from __future__ import annotations

from pathlib import Path

from segmentd.cli.common import EXIT_CONFLICT, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE
from tests.cli.conftest import Segmentd


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def test_lists__create_import_get_list_delete(segmentd: Segmentd, tmp_path: Path):
    # Given
    ids = _write(tmp_path, "ids.txt", "u1\n\n u2 \nu3\nu1\n")
    export = _write(tmp_path, "export.csv", "email,account_id\na@x,u3\nb@x,u4\n")

    # When / Then
    assert (await segmentd("lists", "create", "beta-testers", "--description", "Early access")).out == (
        "created beta-testers\n"
    )
    imported = await segmentd("lists", "import", "beta-testers", str(ids), "--progress")
    assert imported.status == EXIT_OK, imported.err
    assert imported.out == f"imported into beta-testers from {ids}: 3 members\n"
    assert "importing: 4 ids" in imported.err
    replaced = await segmentd(
        "lists", "import", "beta-testers", str(export), "--column", "account_id", "--replace"
    )
    assert replaced.out == f"replaced the members of beta-testers from {export}: 2 members\n"
    got = await segmentd("lists", "get", "beta-testers")
    assert got.out.splitlines() == [
        "NAME          MEMBERS  DESCRIPTION",
        "beta-testers        2  Early access",
    ]
    as_json = await segmentd("lists", "get", "beta-testers", "-o", "json")
    assert '"member_count": 2' in as_json.out
    listed = await segmentd("lists", "list")
    assert listed.out.splitlines()[1].startswith("beta-testers")
    assert (await segmentd("lists", "delete", "beta-testers")).out == "deleted beta-testers\n"
    assert (await segmentd("lists", "get", "beta-testers")).status == EXIT_NOT_FOUND


async def test_lists_import__bad_file__nothing_changed(segmentd: Segmentd, tmp_path: Path):
    await segmentd("lists", "create", "beta-testers")
    no_column = _write(tmp_path, "export.csv", "email\na@x\n")
    bad_id = _write(tmp_path, "ids.txt", "u1\n" + "x" * 300 + "\n")
    unterminated = _write(tmp_path, "quotes.csv", 'user_id,other\na1,1\n"unterminated,2\n')

    missing = await segmentd("lists", "import", "beta-testers", str(no_column))
    refused = await segmentd("lists", "import", "beta-testers", str(bad_id))
    malformed = await segmentd("lists", "import", "beta-testers", str(unterminated))
    absent = await segmentd("lists", "import", "beta-testers", str(tmp_path / "nope.txt"))

    assert missing.status == EXIT_INVALID
    assert "no column 'user_id'" in missing.err and "the list was not changed" in missing.err
    assert refused.status == EXIT_INVALID and "user_ids[1]" in refused.err
    assert malformed.status == EXIT_INVALID, malformed.out
    assert "malformed CSV" in malformed.err and "the list was not changed" in malformed.err
    assert absent.status == EXIT_USAGE
    assert "beta-testers        0" in (await segmentd("lists", "get", "beta-testers")).out


async def test_lists_delete__referenced__conflict(segmentd: Segmentd, tmp_path: Path):
    await segmentd("lists", "create", "beta-testers")
    segment = _write(tmp_path, "beta.yaml", "name: beta\nrule:\n  in_list:\n    name: beta-testers\n")
    applied = await segmentd("apply", "-f", str(segment))
    assert applied.status == EXIT_OK, applied.err
    assert (await segmentd("apply", "-f", str(segment))).out == "unchanged beta\n"

    result = await segmentd("lists", "delete", "beta-testers")

    assert result.status == EXIT_CONFLICT
    assert "referenced by segments 'beta'" in result.err

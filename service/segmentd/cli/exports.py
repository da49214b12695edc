"""Member exports to CSV or JSON Lines that survive interruption.

    ListSegmentMembers chunks ─> rows appended, flushed and synced ─> FILE.token saved
    (segment, next_page_token, bytes written), replaced atomically after every chunk

``--resume`` cuts the file back to the recorded length (rows written after the last saved
token are dropped, so none is written twice) and continues from that token. A complete
listing deletes the token file.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import IO, Any, Final

from segmentd.cli.common import EXIT_USAGE, fail
from segmentd_client import Client

FORMATS: Final = ("csv", "jsonl")
_HEADER_BY_FORMAT: Final = {"csv": "user_id\n", "jsonl": ""}


def _row(file_format: str, user_id: str) -> str:
    if file_format == "jsonl":
        return json.dumps({"user_id": user_id}, ensure_ascii=False) + "\n"
    needs_quotes = any(character in user_id for character in ',"\r\n') or user_id != user_id.strip()
    return ('"' + user_id.replace('"', '""') + '"' if needs_quotes else user_id) + "\n"


def export_members(client: Client, segment: str, file_format: str, output: Path | None, resume: bool) -> int:
    """Write a segment's members to ``output`` (stdout when None); return how many were written."""
    if output is None:
        if resume:
            fail(EXIT_USAGE, "--resume needs --output FILE")
        sys.stdout.write(_HEADER_BY_FORMAT[file_format])
        return _write(client, segment, file_format, sys.stdout, "", None)
    sidecar = output.with_name(output.name + ".token")
    token, length = _starting_point(sidecar, segment) if resume else ("", None)
    with _open(output, file_format, length) as file:
        written = _write(client, segment, file_format, file, token, sidecar)
    sidecar.unlink(missing_ok=True)
    return written


def _write(
    client: Client, segment: str, file_format: str, file: IO[str], token: str, sidecar: Path | None
) -> int:
    written = 0
    for chunk in client.iter_member_chunks(segment, page_token=token):
        file.write("".join(_row(file_format, user_id) for user_id in chunk.user_ids))
        written += len(chunk.user_ids)
        file.flush()
        if sidecar is not None:
            os.fsync(file.fileno())
            _save(sidecar, segment, chunk.next_page_token, os.fstat(file.fileno()).st_size)
    return written


def _starting_point(sidecar: Path, segment: str) -> tuple[str, int]:
    try:
        saved: dict[str, Any] = json.loads(sidecar.read_text(encoding="utf-8"))
    except FileNotFoundError:
        fail(EXIT_USAGE, f"nothing to resume: {sidecar} does not exist")
    except ValueError as exc:
        fail(EXIT_USAGE, f"{sidecar} is not a token file: {exc}")
    if saved.get("segment") != segment:
        fail(EXIT_USAGE, f"{sidecar} is for segment {saved.get('segment')!r}, not {segment!r}")
    return str(saved["next_page_token"]), int(saved["output_bytes"])


def _open(output: Path, file_format: str, length: int | None) -> IO[str]:
    if length is None or not output.exists():
        file = output.open("w", encoding="utf-8", newline="")
        file.write(_HEADER_BY_FORMAT[file_format])
        return file
    os.truncate(output, length)
    return output.open("a", encoding="utf-8", newline="")


def _save(sidecar: Path, segment: str, token: str, output_bytes: int) -> None:
    state = {"segment": segment, "next_page_token": token, "output_bytes": output_bytes}
    partial = sidecar.with_name(sidecar.name + ".partial")
    partial.write_text(json.dumps(state), encoding="utf-8")
    os.replace(partial, sidecar)

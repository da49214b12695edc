"""Stream the members of a segment to a CSV file, resumably: the billing use case.

Written with the generated client only (``segmentd_client`` and ``grpc``), as another team's
service would be::

    uv run python scripts/upgrade_candidates.py --output members.csv
    uv run python scripts/upgrade_candidates.py --output members.csv --resume
    uv run python scripts/upgrade_candidates.py --output more.csv --resume-token TOKEN

The file gets a ``user_id`` header, then one row per member, in the server's order
(ascending user id). ``ListSegmentMembers`` streams chunks of ids, each with the token that
resumes right after it; after every chunk this script writes the rows, syncs them to disk,
then records the token and the file's length in the sidecar ``FILE.token`` (JSON, replaced
atomically). ``--resume`` truncates the file back to the recorded length, so rows written
after the last recorded token are not written twice, and continues from that token.

A complete listing ends with an empty token: the sidecar is then deleted. With
``--page-size N`` the listing stops after N members and the sidecar keeps the token of the
next page. Exit status: 0 done, 1 the server refused (unknown segment, bad token),
2 usage error, 3 server unreachable.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import grpc

from segmentd_client.v1 import evaluation_pb2, evaluation_pb2_grpc

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


def main(argv: Sequence[str] | None = None) -> int:
    """Run the script with ``argv``; return the exit status."""
    arguments = _parser().parse_args(argv)
    output: Path = arguments.output
    sidecar = output.with_name(output.name + ".token")
    try:
        token, length = _starting_point(arguments, sidecar)
    except ValueError as exc:
        print(f"upgrade_candidates: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with grpc.insecure_channel(arguments.target) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=arguments.connect_timeout)
        except grpc.FutureTimeoutError:
            print(
                f"upgrade_candidates: cannot reach a segmentd server at {arguments.target}", file=sys.stderr
            )
            return EXIT_UNREACHABLE
        request = evaluation_pb2.ListSegmentMembersRequest(
            segment_name=arguments.segment, page_size=arguments.page_size, page_token=token
        )
        try:
            return _download(
                evaluation_pb2_grpc.EvaluationServiceStub(channel), request, output, sidecar, length
            )
        except grpc.RpcError as exc:
            return _failed(exc, sidecar)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Stream a segment's members to a CSV file, resumably.")
    parser.add_argument(
        "--target", default="localhost:50051", help="server address (default localhost:50051)"
    )
    parser.add_argument("--segment", default="upgrade-candidates", help="default: upgrade-candidates")
    parser.add_argument("--output", type=Path, required=True, help="the CSV file to write")
    parser.add_argument("--page-size", type=int, default=0, help="stop after this many members (0: all)")
    parser.add_argument("--connect-timeout", type=float, default=5.0, help="seconds to wait for the server")
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume-token", default="", help="continue after this token, appending to FILE")
    resume.add_argument("--resume", action="store_true", help="continue from the token saved in FILE.token")
    return parser


def _starting_point(arguments: argparse.Namespace, sidecar: Path) -> tuple[str, int | None]:
    """Return the token to start from, and the length to cut the output back to (None: new file)."""
    if arguments.resume_token:
        return arguments.resume_token, _current_length(arguments.output)
    if not arguments.resume:
        return "", None
    try:
        saved = json.loads(sidecar.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"nothing to resume: {sidecar} does not exist") from None
    except ValueError as exc:
        raise ValueError(f"{sidecar} is not a token file: {exc}") from None
    if saved.get("segment") != arguments.segment:
        raise ValueError(f"{sidecar} is for segment {saved.get('segment')!r}, not {arguments.segment!r}")
    return str(saved["next_page_token"]), int(saved["output_bytes"])


def _current_length(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _download(
    stub: evaluation_pb2_grpc.EvaluationServiceStub,
    request: evaluation_pb2.ListSegmentMembersRequest,
    output: Path,
    sidecar: Path,
    length: int | None,
) -> int:
    written = 0
    last_token = request.page_token
    with _open_output(output, length) as file:
        writer = csv.writer(file, lineterminator="\n")
        call = stub.ListSegmentMembers(request)
        for message in call:
            writer.writerows([user_id] for user_id in message.user_ids)
            file.flush()
            os.fsync(file.fileno())
            written += len(message.user_ids)
            last_token = message.next_page_token
            if not last_token:
                # The listing's last message: every member is written, so a stream broken
                # after it must not leave a token that would resume from the first member.
                call.cancel()
                break
            # Rows are only appended: the file's size is where the next chunk starts.
            _save_token(sidecar, request.segment_name, last_token, os.fstat(file.fileno()).st_size)
    if last_token:
        print(f"wrote {written} members to {output}; more remain: --resume (token in {sidecar})")
    else:
        sidecar.unlink(missing_ok=True)
        print(f"wrote {written} members to {output}; the listing is complete")
    return EXIT_OK


def _open_output(output: Path, length: int | None) -> IO[str]:
    """Open the CSV for appending after ``length`` bytes, or anew with its header."""
    if length is None or not output.exists():
        file = output.open("w", encoding="utf-8", newline="")
        file.write("user_id\n")
        return file
    os.truncate(output, length)
    return output.open("a", encoding="utf-8", newline="")


def _save_token(sidecar: Path, segment: str, token: str, output_bytes: int) -> None:
    state: dict[str, Any] = {"segment": segment, "next_page_token": token, "output_bytes": output_bytes}
    partial = sidecar.with_name(sidecar.name + ".partial")
    partial.write_text(json.dumps(state), encoding="utf-8")
    os.replace(partial, sidecar)


def _failed(error: grpc.RpcError, sidecar: Path) -> int:
    code = error.code()
    details = error.details() or ""
    print(f"upgrade_candidates: {code.name}: {details}", file=sys.stderr)
    if sidecar.exists():
        print(f"upgrade_candidates: rerun with --resume to continue (token in {sidecar})", file=sys.stderr)
    return EXIT_UNREACHABLE if code == grpc.StatusCode.UNAVAILABLE else EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())

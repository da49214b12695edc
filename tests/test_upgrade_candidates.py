"""scripts/upgrade_candidates.py against a fake EvaluationService: CSV output, resumption."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import grpc
import pytest

from segmentd_client.v1 import evaluation_pb2, evaluation_pb2_grpc

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "upgrade_candidates.py"
MEMBERS = ["a", "b,comma", 'c"quote', "d", "e"]


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("upgrade_candidates", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = _load_script()


@dataclass
class FakeEvaluationService(evaluation_pb2_grpc.EvaluationServiceServicer):
    """Streams MEMBERS two at a time; a token is the index to resume at."""

    fail_after_chunks: int | None = None
    fail_after_last: bool = False
    requests: list[evaluation_pb2.ListSegmentMembersRequest] = field(default_factory=list)

    def ListSegmentMembers(self, request, context):
        self.requests.append(request)
        if request.segment_name != "upgrade-candidates":
            context.abort(grpc.StatusCode.NOT_FOUND, f"no segment {request.segment_name!r}")
        start = int(request.page_token or 0)
        end = len(MEMBERS) if not request.page_size else min(len(MEMBERS), start + request.page_size)
        for chunk, index in enumerate(range(start, end, 2)):
            if chunk == self.fail_after_chunks:
                context.abort(grpc.StatusCode.UNAVAILABLE, "replica going away")
            stop = min(index + 2, end)
            yield evaluation_pb2.ListSegmentMembersResponse(
                user_ids=MEMBERS[index:stop], next_page_token="" if stop == len(MEMBERS) else str(stop)
            )
        if start == end:
            yield evaluation_pb2.ListSegmentMembersResponse()
        if self.fail_after_last:  # every message sent, the status lost (a replica going away)
            context.abort(grpc.StatusCode.UNAVAILABLE, "replica going away")


@pytest.fixture
def service() -> Iterator[tuple[FakeEvaluationService, str]]:
    fake = FakeEvaluationService()  # type: ignore[abstract]  # only ListSegmentMembers is called
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    evaluation_pb2_grpc.add_EvaluationServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield fake, f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def _rows(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


EXPECTED_ROWS = ["user_id", "a", '"b,comma"', '"c""quote"', "d", "e"]


def test_main__complete_listing__all_members_and_no_sidecar(
    service: tuple[FakeEvaluationService, str], tmp_path: Path
) -> None:
    # Given
    _, target = service
    output = tmp_path / "members.csv"
    # When
    status = script.main(["--target", target, "--output", str(output)])
    # Then
    assert status == script.EXIT_OK
    assert _rows(output) == EXPECTED_ROWS
    assert not (tmp_path / "members.csv.token").exists()


def test_main__broken_stream__resume_continues_without_duplicates(
    service: tuple[FakeEvaluationService, str], tmp_path: Path
) -> None:
    # Given: the stream breaks after the first chunk
    fake, target = service
    fake.fail_after_chunks = 1
    output = tmp_path / "members.csv"
    assert script.main(["--target", target, "--output", str(output)]) == script.EXIT_UNREACHABLE
    saved = json.loads((tmp_path / "members.csv.token").read_text())
    assert saved["next_page_token"] == "2"
    # ... and rows written after the last saved token (a crash between the two) are dropped
    with output.open("a", encoding="utf-8") as file:
        file.write("half-written\n")
    fake.fail_after_chunks = None
    # When
    status = script.main(["--target", target, "--output", str(output), "--resume"])
    # Then
    assert status == script.EXIT_OK
    assert fake.requests[-1].page_token == "2"
    assert _rows(output) == EXPECTED_ROWS


def test_main__stream_broken_after_its_last_message__complete_and_no_sidecar(
    service: tuple[FakeEvaluationService, str], tmp_path: Path
) -> None:
    # Given: every member arrives, then the stream ends UNAVAILABLE instead of OK
    fake, target = service
    fake.fail_after_last = True
    output = tmp_path / "members.csv"
    # When
    status = script.main(["--target", target, "--output", str(output)])
    # Then: complete, with nothing left to resume (a resume from "" would list everyone again)
    assert status == script.EXIT_OK
    assert _rows(output) == EXPECTED_ROWS
    assert not (tmp_path / "members.csv.token").exists()


def test_main__page_size__stops_and_resumes_with_the_next_page(
    service: tuple[FakeEvaluationService, str], tmp_path: Path
) -> None:
    # Given
    _, target = service
    output = tmp_path / "members.csv"
    # When
    first = script.main(["--target", target, "--output", str(output), "--page-size", "3"])
    second = script.main(["--target", target, "--output", str(output), "--resume"])
    # Then
    assert (first, second) == (script.EXIT_OK, script.EXIT_OK)
    assert _rows(output) == EXPECTED_ROWS


def test_main__resume_token__appends(service: tuple[FakeEvaluationService, str], tmp_path: Path) -> None:
    # Given
    _, target = service
    output = tmp_path / "members.csv"
    output.write_text("user_id\na\n", encoding="utf-8")
    # When
    status = script.main(["--target", target, "--output", str(output), "--resume-token", "4"])
    # Then
    assert status == script.EXIT_OK
    assert _rows(output) == ["user_id", "a", "e"]


@pytest.mark.parametrize(
    ("arguments", "sidecar", "message"),
    [
        pytest.param(["--resume"], None, "nothing to resume", id="no-sidecar"),
        pytest.param(["--resume"], "{not json", "not a token file", id="bad-sidecar"),
        pytest.param(
            ["--resume", "--segment", "upgrade-candidates"],
            '{"segment": "other", "next_page_token": "2", "output_bytes": 0}',
            "is for segment 'other'",
            id="other-segment",
        ),
    ],
)
def test_main__cannot_resume__usage_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    sidecar: str | None,
    message: str,
) -> None:
    # Given
    output = tmp_path / "members.csv"
    if sidecar is not None:
        (tmp_path / "members.csv.token").write_text(sidecar)
    # When
    status = script.main(["--output", str(output), *arguments])
    # Then
    assert status == script.EXIT_USAGE
    assert message in capsys.readouterr().err


def test_main__unknown_segment__refused(
    service: tuple[FakeEvaluationService, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given
    _, target = service
    # When
    status = script.main(["--target", target, "--output", str(tmp_path / "m.csv"), "--segment", "nope"])
    # Then
    assert status == script.EXIT_REFUSED
    assert "NOT_FOUND" in capsys.readouterr().err


def test_main__no_server__unreachable(tmp_path: Path) -> None:
    status = script.main(
        ["--target", "127.0.0.1:9", "--output", str(tmp_path / "m.csv"), "--connect-timeout", "0.2"]
    )
    assert status == script.EXIT_UNREACHABLE

"""``segmentd import``: file to ImportProfiles messages, exit codes, lines in messages.

Runs the command against a fake ProfileService on a real gRPC server (port 0), which records
what it receives; the end-to-end test against the real server is tests/test_end_to_end*.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from segmentd.import_formats import RowError
from segmentd.importer_cli import EXIT_INVALID, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, LineMap, main
from segmentd_client.v1 import profiles_pb2, profiles_pb2_grpc


@dataclass
class FakeProfileService(profiles_pb2_grpc.ProfileServiceServicer):
    """Records the import stream; answers with ``response`` or aborts with ``abort``."""

    response: profiles_pb2.ImportProfilesResponse = field(default_factory=profiles_pb2.ImportProfilesResponse)
    abort: tuple[grpc.StatusCode, str] | None = None
    requests: list[profiles_pb2.ImportProfilesRequest] = field(default_factory=list)
    completed: bool = False
    finished: threading.Event = field(default_factory=threading.Event)

    def ImportProfiles(self, request_iterator, context):
        try:
            for request in request_iterator:
                self.requests.append(request)
            self.completed = context.is_active()
        finally:
            self.finished.set()
        if self.abort is not None:
            context.abort(*self.abort)
        return self.response

    @property
    def profiles(self) -> list[profiles_pb2.Profile]:
        return [profile for request in self.requests for profile in request.profiles]


@pytest.fixture
def service() -> Iterator[tuple[FakeProfileService, str]]:
    fake = FakeProfileService()  # type: ignore[abstract]  # only ImportProfiles is called
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    profiles_pb2_grpc.add_ProfileServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield fake, f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_import__csv__streamed_with_options_and_summary(
    service: tuple[FakeProfileService, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given
    fake, target = service
    fake.response = profiles_pb2.ImportProfilesResponse(imported=3)
    path = _write(tmp_path, "users.csv", "user_id,plan,mrr:number\nu1,free,10\nu2,pro,\nu3,,2.5\n")
    # When
    status = main([str(path), "--target", target, "--replace", "--batch-size", "2"])
    # Then
    assert status == EXIT_OK
    assert [len(request.profiles) for request in fake.requests] == [2, 1]
    assert fake.requests[0].replace and not fake.requests[0].skip_invalid
    assert not fake.requests[1].replace
    assert [(p.user_id, dict(p.traits)) for p in fake.profiles] == [
        ("u1", {"plan": "free", "mrr": 10.0}),
        ("u2", {"plan": "pro"}),
        ("u3", {"mrr": 2.5}),
    ]
    assert f"imported 3 profiles from {path}" in capsys.readouterr().out


def test_import__empty_file_body__one_message_with_the_options(
    service: tuple[FakeProfileService, str], tmp_path: Path
) -> None:
    # Given
    fake, target = service
    path = _write(tmp_path, "users.jsonl", "\n")
    # When
    status = main([str(path), "--target", target, "--skip-invalid"])
    # Then
    assert status == EXIT_OK
    assert len(fake.requests) == 1
    assert fake.requests[0].skip_invalid
    assert not fake.requests[0].profiles


def test_import__skip_invalid__server_positions_shown_as_file_lines(
    service: tuple[FakeProfileService, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given: line 3 is unreadable here, so the server's 2nd profile is line 5
    fake, target = service
    fake.response = profiles_pb2.ImportProfilesResponse(
        imported=2,
        skipped=1,
        errors=[profiles_pb2.ImportError(index=2, field="user_id", message="must be 1 to 256")],
    )
    path = _write(tmp_path, "users.csv", "user_id,n:integer\nu1,1\nu2,x\n\n,4\nu5,5\n")
    # When
    status = main([str(path), "--target", target, "--skip-invalid"])
    # Then
    assert status == EXIT_OK
    assert [p.user_id for p in fake.profiles] == ["u1", "", "u5"]
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"{path}:3: n:integer: 'x' is not an integer",
        f"{path}:5: user_id: must be 1 to 256",
    ]
    assert f"imported 2 profiles from {path}; skipped 2 invalid rows" in captured.out


def test_import__unreadable_row__call_cancelled_and_all_bad_lines_listed(
    service: tuple[FakeProfileService, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given
    fake, target = service
    path = _write(tmp_path, "users.jsonl", '{"user_id": "a"}\n{oops\n{"user_id": "b"}\n[]\n')
    # When
    status = main([str(path), "--target", target, "--batch-size", "1"])
    # Then
    assert status == EXIT_INVALID
    err = capsys.readouterr().err
    assert f"{path}:2: json: not valid JSON" in err
    assert f"{path}:4: json: each line must be a JSON object" in err
    assert "2 invalid rows; nothing was imported" in err
    assert fake.finished.wait(5)
    assert not fake.completed


def test_import__server_refuses_a_profile__its_line_named(
    service: tuple[FakeProfileService, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given
    fake, target = service
    fake.abort = (
        grpc.StatusCode.INVALID_ARGUMENT,
        "profiles[2].user_id: must be 1 to 256 characters (1 of 2 ...)",
    )
    path = _write(tmp_path, "users.csv", 'user_id\nu1\n\n\n""\n')
    # When
    status = main([str(path), "--target", target, "--format", "csv"])
    # Then
    assert status == EXIT_INVALID
    assert f"{path}:5: user_id: must be 1 to 256 characters" in capsys.readouterr().err


def test_import__server_unavailable__exit_3(
    service: tuple[FakeProfileService, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given
    fake, target = service
    fake.abort = (grpc.StatusCode.UNAVAILABLE, "database unavailable")
    path = _write(tmp_path, "users.csv", "user_id\nu1\n")
    # When
    status = main([str(path), "--target", target])
    # Then
    assert status == EXIT_UNREACHABLE
    assert "database unavailable" in capsys.readouterr().err


def test_import__no_server__exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given
    path = _write(tmp_path, "users.csv", "user_id\nu1\n")
    # When
    status = main([str(path), "--target", "127.0.0.1:9", "--connect-timeout", "0.2"])
    # Then
    assert status == EXIT_UNREACHABLE
    assert "cannot reach a segmentd server at 127.0.0.1:9" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "text", "arguments", "status", "message"),
    [
        pytest.param("users.txt", "user_id\n", [], EXIT_USAGE, "unknown file type", id="unknown-type"),
        pytest.param(None, "", [], EXIT_USAGE, "No such file", id="missing-file"),
        pytest.param("users.csv", "plan\nfree\n", [], EXIT_INVALID, "exactly one 'user_id'", id="bad-header"),
        pytest.param("users.csv", b"user_id\n\xff\n", [], EXIT_INVALID, "not UTF-8", id="not-utf8"),
    ],
)
def test_import__bad_input__exit_status_and_message(
    service: tuple[FakeProfileService, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str | None,
    text: str | bytes,
    arguments: list[str],
    status: int,
    message: str,
) -> None:
    # Given
    fake, target = service
    path = tmp_path / (name or "missing.csv")
    if name is not None:
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    # When
    result = main([str(path), "--target", target, *arguments])
    # Then
    assert result == status
    assert message in capsys.readouterr().err
    assert not fake.completed


@pytest.mark.parametrize("arguments", [["--batch-size", "0"], ["--format", "xml"], []])
def test_import__bad_arguments__usage_error(arguments: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*(["users.csv"] if arguments else []), *arguments])
    assert exited.value.code == EXIT_USAGE


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

"""TLS, mutual TLS and the API key on the wire, from the client and from `segmentd --key`.

segmentd's server has neither TLS nor authentication yet, so these run against a gRPC server
of this test's own that terminates (mutual) TLS and answers GetSegment with what it saw: the
client side is what is tested. Certificates are made with the openssl command.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from segmentd_client import TLS, AsyncClient, Unavailable
from segmentd_client.v1 import segments_pb2, segments_pb2_grpc
from tests.client.conftest import scripted_server


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "1", "-subj", "/CN=test-ca",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=folder)  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", f"/CN={name}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=folder)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "1", "-sha256", "-extfile", "san.ext", "-out", f"{name}.pem",
                 cwd=folder)  # fmt: skip
    return folder


@dataclass
class Recorder(segments_pb2_grpc.SegmentServiceServicer):
    metadata: list[dict[str, str]] = field(default_factory=list)
    peers: list[list[bytes]] = field(default_factory=list)

    async def GetSegment(self, request, context):
        self.metadata.append({key: str(value) for key, value in context.invocation_metadata() or ()})
        self.peers.append(context.auth_context().get("x509_common_name", []))
        return segments_pb2.Segment(name=request.name, version=1)


@pytest.fixture
async def tls_server(certificates: Path) -> AsyncIterator[tuple[Recorder, int]]:
    recorder = Recorder()  # type: ignore[abstract]  # only GetSegment is called
    server = grpc.aio.server()
    segments_pb2_grpc.add_SegmentServiceServicer_to_server(recorder, server)
    credentials = grpc.ssl_server_credentials(
        [((certificates / "server.key").read_bytes(), (certificates / "server.pem").read_bytes())],
        root_certificates=(certificates / "ca.pem").read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        yield recorder, port
    finally:
        await server.stop(None)


async def test_mutual_tls_and_api_key__server_sees_the_client_certificate_and_bearer_key(
    tls_server: tuple[Recorder, int], certificates: Path
):
    # Given
    recorder, port = tls_server
    tls = TLS.from_files(
        ca=certificates / "ca.pem", cert=certificates / "client.pem", key=certificates / "client.key",
        server_name="localhost",
    )  # fmt: skip
    # When
    async with AsyncClient(f"127.0.0.1:{port}", tls=tls, api_key="k1") as client:
        segment = await client.get_segment("free")
    # Then
    assert segment.name == "free"
    assert recorder.metadata[0]["authorization"] == "Bearer k1"
    assert recorder.peers[0] == [b"client"]


async def test_tls_without_the_client_certificate__refused(
    tls_server: tuple[Recorder, int], certificates: Path
):
    _, port = tls_server
    tls = TLS.from_files(ca=certificates / "ca.pem", server_name="localhost")
    async with AsyncClient(f"127.0.0.1:{port}", tls=tls, timeout=3) as client:
        with pytest.raises(Unavailable):
            await client.get_segment("free")
    async with AsyncClient(f"127.0.0.1:{port}", timeout=3) as plaintext:
        with pytest.raises(Unavailable):
            await plaintext.get_segment("free")


async def test_command_line_key__sent_as_bearer_metadata(monkeypatch: pytest.MonkeyPatch):
    # Given: a plaintext server that records what it receives
    from segmentd.cli import main

    recorder = Recorder()  # type: ignore[abstract]  # only GetSegment is called
    async with scripted_server(segments_pb2_grpc.add_SegmentServiceServicer_to_server, recorder) as target:
        # When: the key comes from the flag, then from the environment
        monkeypatch.setenv("SEGMENTD_TARGET", target)
        assert await asyncio.to_thread(main, ["get", "free", "--key", "k1", "-o", "json"]) == 0
        monkeypatch.setenv("SEGMENTD_API_KEY", "k2")
        assert await asyncio.to_thread(main, ["get", "free"]) == 0
    # Then
    assert [metadata["authorization"] for metadata in recorder.metadata] == ["Bearer k1", "Bearer k2"]


def test_settings__secrets__never_in_their_repr():
    from segmentd_client._channel import channel_settings

    tls = TLS(certificate_chain=b"-----BEGIN CERTIFICATE-----", private_key=b"-----BEGIN PRIVATE KEY-----")
    settings = channel_settings("localhost:1", "sdk_0123456789ab_" + "S" * 43, tls, 1.0, 1.0, ())

    assert settings.api_key is not None and settings.api_key.endswith("S" * 43)
    assert "S" * 43 not in repr(settings) and "PRIVATE KEY" not in repr(settings)
    assert "CERTIFICATE" in repr(settings)  # what is public still shows

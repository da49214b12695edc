"""TLS and mutual TLS, server and clients, with certificates made by the test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from segmentd.cli.common import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from segmentd.config import settings_for_tests
from segmentd.observability import probe
from segmentd.security.tls import TLSFilesError
from segmentd.server import RunningServer, start_server
from segmentd_client import TLS, AsyncClient, Client, errors
from tests.cli.conftest import Segmentd, run_segmentd
from tests.observability.conftest import free_port
from tests.security.certificates import Authority, make_authority
from tests.security.conftest import issue_key


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    return make_authority(tmp_path)


@pytest.fixture
def segmentd(capsys: pytest.CaptureFixture[str]) -> Segmentd:
    return run_segmentd(capsys)


async def _start(
    store_url: str, authority: Authority, *, mutual: bool = False, **more: object
) -> RunningServer:
    settings = settings_for_tests(
        database_url=store_url,
        migrate=False,
        host="127.0.0.1",
        tls_cert=str(authority.server.cert),
        tls_key=str(authority.server.key),
        tls_client_ca=str(authority.ca) if mutual else "",
        **more,
    )
    return await start_server(settings)


@pytest.fixture
async def tls_server(store_url: str, authority: Authority) -> AsyncIterator[RunningServer]:
    running = await _start(store_url, authority)
    try:
        yield running
    finally:
        await running.stop(None)


@pytest.fixture
async def mtls_server(store_url: str, authority: Authority) -> AsyncIterator[RunningServer]:
    running = await _start(store_url, authority, mutual=True)
    try:
        yield running
    finally:
        await running.stop(None)


def _target(running: RunningServer) -> str:
    return f"localhost:{running.port}"


async def test_tls__client_trusting_the_ca__calls_succeed(tls_server: RunningServer, authority: Authority):
    async with AsyncClient(_target(tls_server), tls=TLS.from_files(ca=authority.ca), timeout=5) as client:
        assert await client.list_segments() == []

    def by_address() -> list[object]:  # the blocking client, in a thread: the server runs on this loop
        with Client(f"127.0.0.1:{tls_server.port}", tls=TLS.from_files(ca=authority.ca), timeout=5) as client:
            return list(client.list_segments())

    assert await asyncio.to_thread(by_address) == []


async def test_tls__plaintext_client__cannot_talk(tls_server: RunningServer):
    async with AsyncClient(_target(tls_server), timeout=2) as client:
        with pytest.raises(errors.Unavailable):
            await client.list_segments()


async def test_tls__client_trusting_another_ca__refuses_the_server(tls_server: RunningServer, tmp_path: Path):
    other = make_authority(tmp_path, name="other")
    async with AsyncClient(_target(tls_server), tls=TLS.from_files(ca=other.ca), timeout=2) as client:
        with pytest.raises(errors.Unavailable):
            await client.list_segments()


async def test_mtls__client_with_its_certificate__calls_succeed(
    mtls_server: RunningServer, authority: Authority
):
    tls = TLS.from_files(ca=authority.ca, cert=authority.client.cert, key=authority.client.key)
    async with AsyncClient(_target(mtls_server), tls=tls, timeout=5) as client:
        assert await client.list_segments() == []


async def test_mtls__client_without_a_certificate__refused(mtls_server: RunningServer, authority: Authority):
    async with AsyncClient(_target(mtls_server), tls=TLS.from_files(ca=authority.ca), timeout=2) as client:
        with pytest.raises(errors.Unavailable):
            await client.list_segments()


async def test_mtls__client_certificate_from_another_ca__refused(
    mtls_server: RunningServer, authority: Authority, tmp_path: Path
):
    stranger = make_authority(tmp_path, name="stranger").client
    tls = TLS.from_files(ca=authority.ca, cert=stranger.cert, key=stranger.key)
    async with AsyncClient(_target(mtls_server), tls=tls, timeout=2) as client:
        with pytest.raises(errors.Unavailable):
            await client.list_segments()


async def test_cli__tls_options__mutual_tls_and_a_key(
    segmentd: Segmentd, store_url: str, authority: Authority, monkeypatch: pytest.MonkeyPatch
):
    # Given: mutual TLS and access control together
    running = await _start(store_url, authority, mutual=True, require_auth=True)
    try:
        _, key = await issue_key(store_url, "read")
        monkeypatch.setenv("SEGMENTD_TARGET", _target(running))
        monkeypatch.setenv("SEGMENTD_API_KEY", key)
        client_pair = (
            "--tls-client-cert",
            str(authority.client.cert),
            "--tls-client-key",
            str(authority.client.key),
        )

        # When / Then: the right files work, by flag or by variable
        listed = await segmentd("list", "--tls-ca", str(authority.ca), *client_pair)
        assert listed.status == EXIT_OK, listed.err
        monkeypatch.setenv("SEGMENTD_TLS_CA", str(authority.ca))
        monkeypatch.setenv("SEGMENTD_TLS_CLIENT_CERT", str(authority.client.cert))
        monkeypatch.setenv("SEGMENTD_TLS_CLIENT_KEY", str(authority.client.key))
        assert (await segmentd("list")).status == EXIT_OK

        # ... and without the client certificate, or in plaintext, the server cannot be reached
        monkeypatch.delenv("SEGMENTD_TLS_CLIENT_CERT")
        monkeypatch.delenv("SEGMENTD_TLS_CLIENT_KEY")
        assert (await segmentd("list", "--timeout", "2")).status == EXIT_UNREACHABLE
        monkeypatch.delenv("SEGMENTD_TLS_CA")
        assert (await segmentd("list", "--timeout", "2")).status == EXIT_UNREACHABLE
    finally:
        await running.stop(None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tls-client-cert", "c.pem"), "must be given together"),
        (("--tls-ca", "/nonexistent/ca.pem"), "cannot read a TLS file"),
    ],
)
async def test_cli__bad_tls_options__usage_error(segmentd: Segmentd, args: tuple[str, ...], message: str):
    result = await segmentd("list", "--target", "localhost:1", *args)
    assert result.status == EXIT_USAGE
    assert message in result.err


async def test_server__unreadable_tls_file__refuses_to_start(
    store_url: str, authority: Authority, tmp_path: Path
):
    settings = settings_for_tests(
        database_url=store_url,
        migrate=False,
        tls_cert=str(tmp_path / "missing.pem"),
        tls_key=str(authority.server.key),
    )
    with pytest.raises(TLSFilesError, match="tls_cert: cannot read"):
        await start_server(settings)


async def test_server__start_fails_partway__what_was_built_is_released(
    store_url: str, authority: Authority, tmp_path: Path
):
    # Given: a start-up that fails after the metrics listener is up (the TLS file comes later)
    metrics_port = free_port()
    broken = settings_for_tests(
        database_url=store_url,
        migrate=False,
        host="127.0.0.1",
        metrics_port=metrics_port,
        tls_cert=str(tmp_path / "missing.pem"),
        tls_key=str(authority.server.key),
    )
    with pytest.raises(TLSFilesError):
        await start_server(broken)

    # When: a server starts on the same metrics port
    running = await start_server(
        settings_for_tests(database_url=store_url, migrate=False, host="127.0.0.1", metrics_port=metrics_port)
    )

    # Then: the failed start left the port free
    await running.stop(None)


async def test_serve__unreadable_tls_file__usage_error(segmentd: Segmentd, store_url: str, tmp_path: Path):
    missing = str(tmp_path / "missing.pem")
    result = await segmentd(
        "serve",
        "--port",
        "0",
        "--database-url",
        store_url,
        "--no-migrate",
        "--tls-cert",
        missing,
        "--tls-key",
        missing,
    )
    assert result.status == EXIT_USAGE
    assert "cannot read" in result.err


async def test_serve__tls_key_without_certificate__usage_error(segmentd: Segmentd, store_url: str):
    result = await segmentd("serve", "--port", "0", "--database-url", store_url, "--tls-key", "k.pem")
    assert result.status == EXIT_USAGE
    assert "tls_cert and tls_key must be given together" in result.err


async def test_probe__mutual_tls_and_auth__serving_with_the_tls_variables(
    store_url: str, authority: Authority
):
    # Given: the container's health probe, and a server with mutual TLS and access control
    running = await _start(store_url, authority, mutual=True, require_auth=True)
    try:
        target = ("--target", _target(running), "--timeout", "2")
        environ = {
            "SEGMENTD_TLS_CA": str(authority.ca),
            "SEGMENTD_TLS_CLIENT_CERT": str(authority.client.cert),
            "SEGMENTD_TLS_CLIENT_KEY": str(authority.client.key),
        }
        # When / Then: with the client variables it needs no key; without them it cannot connect
        assert await asyncio.to_thread(probe.main, list(target), environ) == 0
        assert await asyncio.to_thread(probe.main, list(target), {}) == 1
        missing = {**environ, "SEGMENTD_TLS_CA": str(authority.ca) + ".missing"}
        assert await asyncio.to_thread(probe.main, list(target), missing) == 1
    finally:
        await running.stop(None)

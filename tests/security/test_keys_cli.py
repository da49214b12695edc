"""`segmentd keys` on the database, the client commands against a server that checks keys,
and revocation seen by two servers on one PostgreSQL database."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from segmentd.cli.common import EXIT_DENIED, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE
from segmentd.server import RunningServer
from segmentd_client.v1 import segments_pb2, segments_pb2_grpc
from tests.cli.conftest import Segmentd, run_segmentd
from tests.security.conftest import bearer, start_auth_server


@pytest.fixture
def segmentd(capsys: pytest.CaptureFixture[str]) -> Segmentd:
    return run_segmentd(capsys)


async def test_keys_create__scopes__key_on_the_last_line_and_listed(segmentd: Segmentd, store_url: str):
    # When
    created = await segmentd(
        "keys", "create", "--scope", "read", "--scope", "evaluate", "--description", "checkout",
        "--database-url", store_url,
    )  # fmt: skip

    # Then: the key is the last line, and the listing shows its id, never the key
    assert created.status == EXIT_OK, created.err
    *said, key = created.out.strip().splitlines()
    assert key.startswith("sdk_") and "evaluate read" in said[0]
    listed = await segmentd("keys", "list", "--database-url", store_url, "-o", "json")
    assert listed.status == EXIT_OK, listed.err
    [entry] = json.loads(listed.out)
    assert key.startswith(f"sdk_{entry['key_id']}_")
    assert entry["scopes"] == ["evaluate", "read"] and entry["description"] == "checkout"
    assert entry["revoke_time"] is None
    assert key not in listed.out


async def test_keys_revoke__key__listed_as_revoked(segmentd: Segmentd, store_url: str):
    created = await segmentd("keys", "create", "--scope", "admin,read", "--database-url", store_url)
    key_id = created.out.strip().splitlines()[-1].split("_")[1]
    revoked = await segmentd("keys", "revoke", key_id, "--database-url", store_url)
    assert revoked.status == EXIT_OK, revoked.err
    assert f"revoked {key_id}" in revoked.out
    listed = await segmentd("keys", "list", "--database-url", store_url)
    assert key_id in listed.out and "revoked 20" in listed.out


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (("create", "--scope", "root"), EXIT_USAGE, "unknown scope 'root'"),
        (("create", "--scope", ","), EXIT_USAGE, "choose from evaluate, read"),
        (("revoke", "ffffffffffff"), EXIT_NOT_FOUND, "no API key has the id 'ffffffffffff'"),
    ],
)
async def test_keys__bad_input__exit_status_and_message(
    segmentd: Segmentd, store_url: str, args: tuple[str, ...], status: int, message: str
):
    result = await segmentd("keys", *args, "--database-url", store_url)
    assert result.status == status
    assert message in result.err


async def test_client_command__auth_server__exit_6_without_key_then_works_with_one(
    segmentd: Segmentd, store_url: str, monkeypatch: pytest.MonkeyPatch
):
    # Given: a server that checks keys, and a read key issued from the command line
    running = await start_auth_server(store_url)
    try:
        monkeypatch.setenv("SEGMENTD_TARGET", f"127.0.0.1:{running.port}")
        created = await segmentd("keys", "create", "--scope", "read", "--database-url", store_url)
        key = created.out.strip().splitlines()[-1]

        # When / Then: no key, the wrong scope, then the right one
        anonymous = await segmentd("list")
        assert anonymous.status == EXIT_DENIED
        assert "missing API key" in anonymous.err and "--key or SEGMENTD_API_KEY" in anonymous.err
        denied = await segmentd("delete", "paying", "--key", key)
        assert denied.status == EXIT_DENIED and "write:segments" in denied.err
        assert "--key or SEGMENTD_API_KEY" not in denied.err  # a key was passed: not the hint
        monkeypatch.setenv("SEGMENTD_API_KEY", key)
        allowed = await segmentd("list")
        assert allowed.status == EXIT_OK, allowed.err
    finally:
        await running.stop(None)


async def _code(running: RunningServer, key: str) -> grpc.StatusCode:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        try:
            await segments_pb2_grpc.SegmentServiceStub(channel).ListSegments(
                segments_pb2.ListSegmentsRequest(), metadata=bearer(key)
            )
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


async def test_keys_revoke__two_replicas__both_refuse_within_the_bound(
    segmentd: Segmentd, store_url: str, dialect: str
):
    if dialect != "postgresql":
        pytest.skip("replicas share a PostgreSQL database")
    # Given: two servers on one database, each having accepted (and cached) the key
    bound = 0.5
    replicas = [await start_auth_server(store_url, auth_cache_seconds=bound) for _ in range(2)]
    try:
        created = await segmentd("keys", "create", "--scope", "read", "--database-url", store_url)
        key_id, key = created.out.split()[-1].split("_")[1], created.out.split()[-1]
        assert [await _code(replica, key) for replica in replicas] == [grpc.StatusCode.OK] * 2

        # When: the key is revoked from the command line, and the bound passes
        revoked = await segmentd("keys", "revoke", key_id, "--database-url", store_url)
        assert revoked.status == EXIT_OK, revoked.err
        await asyncio.sleep(bound + 0.1)

        # Then: every replica refuses it
        codes = [await _code(replica, key) for replica in replicas]
        assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 2
    finally:
        for replica in replicas:
            await replica.stop(None)

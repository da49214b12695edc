"""``segmentd-probe``: ask a server's gRPC health service whether it is SERVING.

The container's ``HEALTHCHECK`` runs it. Exit status: 0 when the server answers SERVING,
1 otherwise (NOT_SERVING, an unknown service, no answer within the timeout), with the
reason on stderr; 2 for a usage error. Docker reads any non-zero status as unhealthy.

    segmentd-probe                              # localhost:$SEGMENTD_PORT (50051)
    segmentd-probe --target db-host:50051 --service segmentd.v1.EvaluationService

When the server speaks TLS, the probe does too if ``SEGMENTD_TLS_CA`` names the roots that
verify it (and, for mutual TLS, ``SEGMENTD_TLS_CLIENT_CERT`` and ``SEGMENTD_TLS_CLIENT_KEY``
its own pair): the variables the command line's clients read. No API key is needed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = 0
NOT_SERVING = 1


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    default_target = f"localhost:{environ.get('SEGMENTD_PORT', '50051')}"
    parser = argparse.ArgumentParser(
        prog="segmentd-probe", description="Exit 0 if the segmentd server reports SERVING, 1 if not."
    )
    parser.add_argument(
        "--target",
        default=default_target,
        help=f"server address (default {default_target}, from SEGMENTD_PORT)",
    )
    parser.add_argument("--service", default="", help="service to ask about (default: the whole server)")
    parser.add_argument(
        "--timeout", type=float, default=3.0, help="seconds to wait for the answer (default 3)"
    )
    return parser


def _channel(target: str, environ: Mapping[str, str]) -> grpc.Channel:
    """A TLS channel when ``SEGMENTD_TLS_CA`` is set, a plaintext one otherwise."""
    ca = environ.get("SEGMENTD_TLS_CA")
    if not ca:
        return grpc.insecure_channel(target)

    def read(variable: str) -> bytes | None:
        path = environ.get(variable)
        return Path(path).read_bytes() if path else None

    credentials = grpc.ssl_channel_credentials(
        read("SEGMENTD_TLS_CA"), read("SEGMENTD_TLS_CLIENT_KEY"), read("SEGMENTD_TLS_CLIENT_CERT")
    )
    return grpc.secure_channel(target, credentials)


def check(
    target: str, service: str = "", timeout: float = 3.0, environ: Mapping[str, str] = os.environ
) -> tuple[bool, str]:
    """Ask ``target``'s health service about ``service``; return (serving, what it said)."""
    with _channel(target, environ) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as error:
            return False, f"{error.code().name}: {error.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    return response.status == health_pb2.HealthCheckResponse.SERVING, status


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    """Run the probe; return the exit status."""
    arguments = _parser(environ).parse_args(argv)
    try:
        serving, said = check(arguments.target, arguments.service, arguments.timeout, environ)
    except OSError as error:
        print(f"segmentd-probe: cannot read a TLS file ({error})", file=sys.stderr)
        return NOT_SERVING
    if serving:
        return SERVING
    print(f"segmentd-probe: {arguments.target} is not serving ({said})", file=sys.stderr)
    return NOT_SERVING


if __name__ == "__main__":
    sys.exit(main())

"""Servers with metrics on, and helpers to read what they export."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from segmentd.config import settings_for_tests
from segmentd.server import RunningServer, start_server


def free_port() -> int:
    """A TCP port nothing listens on right now (metrics_port=0 means "off", not "any")."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def server(store_url: str) -> AsyncIterator[RunningServer]:
    """A server with the default settings (metrics off), but an access line for every call."""
    settings = settings_for_tests(database_url=store_url, migrate=False, host="127.0.0.1", access_log="all")
    running = await start_server(settings)
    try:
        yield running
    finally:
        await running.stop(None)


@pytest.fixture
async def metrics_server(store_url: str) -> AsyncIterator[RunningServer]:
    running = await start_metrics_server(store_url)
    try:
        yield running
    finally:
        await running.stop(None)


async def start_metrics_server(store_url: str, **overrides: Any) -> RunningServer:
    settings = settings_for_tests(
        database_url=store_url, migrate=False, host="127.0.0.1", metrics_port=free_port(), **overrides
    )
    return await start_server(settings)


async def scrape(running: RunningServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """GET /metrics over HTTP; return every sample as (name, labels) -> value."""
    assert running.telemetry is not None and running.telemetry.metrics_port is not None
    url = f"http://127.0.0.1:{running.telemetry.metrics_port}/metrics"

    def get() -> str:
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            return str(response.read().decode())

    text = await asyncio.to_thread(get)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def labels(**pairs: str) -> frozenset[tuple[str, str]]:
    return frozenset(pairs.items())

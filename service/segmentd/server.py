"""The grpc.aio server: wiring, health, reflection, graceful shutdown.

    Settings ─> AsyncEngine ─> repositories ─> catalog / profiles / evaluator / membership
                                                   └─> servicers ─> grpc.aio.Server (+ health, reflection)

Nothing is created at import time: :func:`start_server` builds everything from settings,
so tests run as many independent servers as they like.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from segmentd.api.decoding import DecodingInterceptor
from segmentd.api.grpc_api import EvaluationLimits, EvaluationServicer, ProfileServicer
from segmentd.api.segments import SegmentServicer
from segmentd.api.user_lists import UserListServicer
from segmentd.config import Settings
from segmentd.evaluation import Evaluator, utc_now
from segmentd.importer import ProfileImporter
from segmentd.membership import Membership
from segmentd.observability.telemetry import Telemetry
from segmentd.population import PercentileThresholds
from segmentd.profiles import ProfileCache, ProfileDirectory
from segmentd.security.exposure import startup_warnings
from segmentd.security.interceptor import access_control, key_verifier
from segmentd.security.tls import server_credentials
from segmentd.security.verifier import KeyVerifier
from segmentd.segments import SegmentCatalog
from segmentd.statistics import SegmentStatistics
from segmentd.store.database import (
    DatabaseSettings,
    create_engine,
    create_sessionmaker,
    dispose_when_returned,
)
from segmentd.store.health import ping
from segmentd.store.members import MemberQueries
from segmentd.store.migrate import migrate
from segmentd.store.notifications import ChangeCallbacks, ChangeListener
from segmentd.store.profiles import ProfileRepository
from segmentd.store.segments import SegmentRepository
from segmentd.store.stats import StatsQueries
from segmentd.store.user_lists import UserListRepository
from segmentd.user_lists import UserListDirectory
from segmentd_client.v1 import (
    evaluation_pb2,
    evaluation_pb2_grpc,
    profiles_pb2,
    profiles_pb2_grpc,
    segments_pb2,
    segments_pb2_grpc,
    user_lists_pb2,
    user_lists_pb2_grpc,
)

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    segments_pb2.DESCRIPTOR.services_by_name["SegmentService"].full_name,
    profiles_pb2.DESCRIPTOR.services_by_name["ProfileService"].full_name,
    evaluation_pb2.DESCRIPTOR.services_by_name["EvaluationService"].full_name,
    user_lists_pb2.DESCRIPTOR.services_by_name["UserListService"].full_name,
)
HEALTH_PROBE_SECONDS = 2.0


@dataclass
class RunningServer:
    """A started server and what it owns; :meth:`stop` releases all of it."""

    server: aio.Server
    port: int
    engine: AsyncEngine
    health: health.aio.HealthServicer
    catalog: SegmentCatalog
    profile_cache: ProfileCache
    percentiles: PercentileThresholds
    listener: ChangeListener | None = None
    telemetry: Telemetry | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self, grace: float | None) -> None:
        """Refuse new calls, let in-flight ones finish within ``grace`` seconds, release the store."""
        await self.health.enter_graceful_shutdown()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.server.stop(grace)
        if self.listener is not None:
            await self.listener.stop()
        await self.catalog.close()
        await self.percentiles.close()
        await dispose_when_returned(self.engine)
        if self.telemetry is not None:
            await self.telemetry.close()


async def start_server(settings: Settings) -> RunningServer:
    """Build the application from ``settings`` and start serving; return once listening.

    When start-up fails partway (a migration, a TLS file, a port in use), what was already
    built (the engine, telemetry's listener, the server) is released before the error
    propagates.

    Raises:
        TLSFilesError: a TLS file named in ``settings`` cannot be read.
    """
    async with contextlib.AsyncExitStack() as built:
        running = await _start(settings, built)
        built.pop_all()  # started: the RunningServer owns it all now
    return running


async def _start(settings: Settings, built: contextlib.AsyncExitStack) -> RunningServer:  # noqa: PLR0915 - the wiring, in order
    engine = create_engine(settings.database_url, database_settings(settings))
    built.push_async_callback(engine.dispose)
    if settings.migrate:
        await migrate(engine)
    sessions = create_sessionmaker(engine)
    segments = SegmentRepository(sessions, settings.rule_limits)
    profiles = ProfileRepository(sessions, settings.event_retention)
    catalog = SegmentCatalog(segments, check_interval=settings.catalogue_check_seconds)
    profile_cache = ProfileCache(settings.profile_cache_size, settings.profile_cache_ttl_seconds)
    percentiles = PercentileThresholds(profiles, ttl=settings.percentile_ttl_seconds)
    evaluator = Evaluator(catalog, profiles, profile_cache, percentiles)
    membership = Membership(
        catalog,
        MemberQueries(
            engine,
            stream_connections=settings.stream_connections,
            acquire_timeout_s=settings.database_pool_timeout_seconds,
        ),
        percentiles,
        settings.page_token_secret.encode(),
        settings.max_page_size,
        utc_now,
    )
    directory = ProfileDirectory(profiles, profile_cache, catalog.observe_version)

    # Metrics, access log and tracing; started before aio.server(), which tracing instruments.
    telemetry = await Telemetry.start(settings, engine, caches={"profiles": profile_cache})
    built.push_async_callback(telemetry.close)
    verifier = key_verifier(settings, sessions)
    server = aio.server(
        # Telemetry outermost, so refused calls are counted under their codes too; decoding
        # innermost, so the metrics and access log see its INVALID_ARGUMENT.
        interceptors=(*telemetry.interceptors, *access_control(verifier), DecodingInterceptor()),
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
        ],
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs or None,
    )
    segments_pb2_grpc.add_SegmentServiceServicer_to_server(SegmentServicer(catalog), server)
    profiles_pb2_grpc.add_ProfileServiceServicer_to_server(
        ProfileServicer(directory, ProfileImporter(engine, profile_cache), settings.max_events_per_call),
        server,
    )
    evaluation_pb2_grpc.add_EvaluationServiceServicer_to_server(
        EvaluationServicer(
            evaluator,
            membership,
            EvaluationLimits(settings.max_batch_size),
            SegmentStatistics(membership, StatsQueries(engine)),
        ),
        server,
    )
    user_lists_pb2_grpc.add_UserListServiceServicer_to_server(
        _user_list_servicer(engine, sessions, profile_cache), server
    )
    health_servicer = _add_health_and_reflection(server)
    built.push_async_callback(server.stop, 0)
    port = _listen(server, settings)
    await server.start()
    running = RunningServer(
        server, port, engine, health_servicer, catalog, profile_cache, percentiles, telemetry=telemetry
    )
    if engine.dialect.name == "postgresql":
        running.listener = ChangeListener(engine.url, _cache_invalidation(catalog, profile_cache, verifier))
        built.push_async_callback(running.listener.stop)
        running.listener.start()
    await _set_health(health_servicer, await ping(engine))
    running._tasks.append(asyncio.create_task(_watch_store(engine, health_servicer)))
    log.info("segmentd listening on %s:%d (store: %s)", settings.host, port, engine.url.render_as_string())
    return running


def _listen(server: aio.Server, settings: Settings) -> int:
    """Add the port (TLS when the settings name a certificate); warn if others reach it unprotected."""
    credentials = server_credentials(settings)
    for warning in startup_warnings(settings):
        log.warning(warning)
    address = f"{settings.host}:{settings.port}"
    if credentials is None:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, credentials)


def database_settings(settings: Settings) -> DatabaseSettings:
    """The store's connection settings, out of the server's."""
    return DatabaseSettings(
        statement_timeout_ms=settings.statement_timeout_ms,
        connect_timeout_s=settings.database_connect_timeout_seconds,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout_s=settings.database_pool_timeout_seconds,
        idle_in_transaction_timeout_ms=settings.idle_in_transaction_timeout_ms,
    )


def _add_health_and_reflection(server: aio.Server) -> health.aio.HealthServicer:
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    return health_servicer


def _user_list_servicer(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], profile_cache: ProfileCache
) -> UserListServicer:
    return UserListServicer(UserListDirectory(UserListRepository(engine, sessions), profile_cache))


def _cache_invalidation(
    catalog: SegmentCatalog, profile_cache: ProfileCache, verifier: KeyVerifier | None
) -> ChangeCallbacks:
    """Invalidate this process's caches on changes made anywhere (other replicas, direct SQL)."""

    def profile_changed(user_id: str | None) -> None:
        if user_id is None:
            profile_cache.clear()
        else:
            profile_cache.invalidate(user_id)

    def segments_changed(version: int | None, notified_at: datetime) -> None:
        if version is None:
            catalog.invalidate()
        else:  # this replica's own writes have already refreshed to their version
            catalog.observe_version(version, notified_at)

    def keys_changed() -> None:
        if verifier is not None:
            verifier.forget()

    def reset() -> None:
        profile_cache.clear()
        catalog.invalidate()
        keys_changed()

    return ChangeCallbacks(profile_changed, segments_changed, reset, keys_changed)


async def _set_health(servicer: health.aio.HealthServicer, store_answers: bool) -> None:
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if store_answers
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in ("", *SERVICE_NAMES):
        await servicer.set(name, status)


async def _watch_store(engine: AsyncEngine, servicer: health.aio.HealthServicer) -> None:
    """Keep the health status in step with whether the database answers."""
    while True:
        await asyncio.sleep(HEALTH_PROBE_SECONDS)
        try:
            store_answers = await ping(engine)
        except Exception:  # ping never raises; should a bug make it, the probe must go on
            log.exception("health probe failed")
            store_answers = False
        await _set_health(servicer, store_answers)


async def serve(settings: Settings, on_ready: Callable[[int], object] | None = None) -> None:
    """Run the server until SIGTERM or SIGINT, then drain in-flight calls and exit.

    Args:
        settings: what to serve, and how.
        on_ready: called with the port once serving; by default the port is printed.
    """
    running = await start_server(settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    if on_ready is None:
        print(f"segmentd serving on port {running.port}", flush=True)
    else:
        on_ready(running.port)
    await stopping.wait()
    # NOT_SERVING first, with the port still open: balancers that probe health stop
    # sending new calls before a closed port would turn them into errors.
    await running.health.enter_graceful_shutdown()
    log.info(
        "shutting down: NOT_SERVING for %ss, then draining in-flight calls for up to %ss",
        settings.shutdown_delay_seconds,
        settings.shutdown_grace_seconds,
    )
    await asyncio.sleep(settings.shutdown_delay_seconds)
    with contextlib.suppress(grpc.RpcError):
        await running.stop(settings.shutdown_grace_seconds)

"""Server CPU per call, by kind, one call at a time (the costs behind the under-writes mix)."""
from __future__ import annotations

import asyncio
import random
import sys
import tempfile
from pathlib import Path

import grpc
from evaluate_user import load, upsert_request, warm
from harness import cpu_seconds, start_server
import workload

from segmentd_client.v1 import evaluation_pb2, evaluation_pb2_grpc, profiles_pb2, profiles_pb2_grpc


async def main() -> None:
    users = [u for u, _ in workload.population(1000)]
    with tempfile.TemporaryDirectory() as folder:
        server = await start_server(sys.argv[1] or None if len(sys.argv) > 1 else None, Path(folder))
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                await load(channel, users)
                await warm(channel, users)
                ev = evaluation_pb2_grpc.EvaluationServiceStub(channel).EvaluateUser
                pr = profiles_pb2_grpc.ProfileServiceStub(channel)
                rng = random.Random(1)

                async def hit() -> None:
                    await ev(evaluation_pb2.EvaluateUserRequest(user_id=rng.choice(users)))

                async def upsert() -> None:
                    await pr.UpsertProfile(upsert_request(rng.choice(users), {"nps": rng.randrange(11)}))

                async def event() -> None:
                    e = profiles_pb2.Event(user_id=rng.choice(users), name="login")
                    e.time.GetCurrentTime()
                    await pr.RecordEvents(profiles_pb2.RecordEventsRequest(events=[e]))

                async def upsert_then_miss() -> None:
                    user = rng.choice(users)
                    await pr.UpsertProfile(upsert_request(user, {"nps": rng.randrange(11)}))
                    await ev(evaluation_pb2.EvaluateUserRequest(user_id=user))

                kinds = [("hit", hit), ("upsert", upsert), ("event", event), ("upsert+miss", upsert_then_miss)]
                if len(sys.argv) > 2:
                    kinds = [k for k in kinds if k[0] == sys.argv[2]] * 8
                for name, call in kinds * 2:
                    await warm(channel, users)
                    n = 1000
                    c0 = cpu_seconds(server.process.pid)
                    for _ in range(n):
                        await call()
                    print(f"{name:12s} {(cpu_seconds(server.process.pid) - c0) / n * 1e6:7.0f} µs server CPU")
        finally:
            server.stop()

asyncio.run(main())

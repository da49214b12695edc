"""Define a segment in its JSON form, store a profile, and ask for verdicts.

Run against a server started with `uv run segmentd serve`:

    uv run python scripts/quickstart.py [--target localhost:50051]

Uses only the generated client (segmentd_client) and grpc.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import grpc
from google.protobuf import json_format

from segmentd_client.v1 import (
    evaluation_pb2,
    evaluation_pb2_grpc,
    profiles_pb2,
    profiles_pb2_grpc,
    segments_pb2,
    segments_pb2_grpc,
)

UPGRADE_CANDIDATES = {
    "name": "upgrade-candidates",
    "description": "Free users close to their seat limit who invite colleagues",
    "rule": {
        "all": {
            "rules": [
                {"condition": {"attribute": "plan", "operator": "EQUALS", "value": "free"}},
                {
                    "condition": {
                        "attribute": "seats_used_pct",
                        "operator": "GREATER_THAN_OR_EQUALS",
                        "value": 80,
                    }
                },
                {
                    "event": {
                        "name": "invite_sent",
                        "operator": "GREATER_THAN_OR_EQUALS",
                        "count": 3,
                        "within_days": 30,
                    }
                },
            ]
        }
    },
}


async def main(target: str) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        segments = segments_pb2_grpc.SegmentServiceStub(channel)
        profiles = profiles_pb2_grpc.ProfileServiceStub(channel)
        evaluation = evaluation_pb2_grpc.EvaluationServiceStub(channel)

        segment = json_format.ParseDict(UPGRADE_CANDIDATES, segments_pb2.Segment())
        try:
            created = await segments.CreateSegment(segments_pb2.CreateSegmentRequest(segment=segment))
            print(f"created {created.name} version {created.version}")
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
            print(f"{segment.name} exists already")

        # A profile the caller holds: evaluated, not stored.
        inline = evaluation_pb2.EvaluateProfileRequest()
        inline.traits.update({"plan": "free", "seats_used_pct": 92})
        print("EvaluateProfile:", list((await evaluation.EvaluateProfile(inline)).segments))

        # A stored profile with events.
        profile = profiles_pb2.Profile(user_id="user-42")
        profile.traits.update({"plan": "free", "seats_used_pct": 92, "company": {"size": 12}})
        await profiles.UpsertProfile(profiles_pb2.UpsertProfileRequest(profile=profile))
        invite = profiles_pb2.Event(user_id="user-42", name="invite_sent", count=3)
        invite.time.GetCurrentTime()
        await profiles.RecordEvents(profiles_pb2.RecordEventsRequest(events=[invite]))
        verdict = await evaluation.EvaluateUser(evaluation_pb2.EvaluateUserRequest(user_id="user-42"))
        print("EvaluateUser:", list(verdict.segments))

        why = await evaluation.ExplainEvaluation(
            evaluation_pb2.ExplainEvaluationRequest(user_id="user-42", segment_name="upgrade-candidates")
        )
        print("ExplainEvaluation:", *(f"  {node.detail}" for node in why.explanation.children), sep="\n")

        count = await evaluation.CountSegmentMembers(
            evaluation_pb2.CountSegmentMembersRequest(segment_name="upgrade-candidates")
        )
        print("CountSegmentMembers:", json.dumps(json_format.MessageToDict(count)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="localhost:50051")
    asyncio.run(main(parser.parse_args().target))

"""Define a segment in its JSON form, store a profile with events, and ask for verdicts.

Run against a server started with `uv run segmentd serve`:

    uv run python scripts/quickstart.py [--target localhost:50051]

Uses only the typed client (segmentd_client).
"""

from __future__ import annotations

import argparse

from segmentd_client import Client, Event

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


def main(target: str) -> None:
    with Client(target) as client:
        print(client.apply_segment(UPGRADE_CANDIDATES))  # created, updated or unchanged

        # A profile the caller holds: evaluated, not stored (it has no events).
        print("evaluate_profile:", client.evaluate_profile({"plan": "free", "seats_used_pct": 92}).segments)

        # A stored profile with events.
        client.upsert_profile("user-42", {"plan": "free", "seats_used_pct": 92, "company": {"size": 12}})
        client.record_events([Event("user-42", "invite_sent", count=3)])
        print("evaluate_user:", client.evaluate_user("user-42").segments)

        why = client.explain("user-42", "upgrade-candidates")
        print(
            "explain:",
            *(f"  {'✓' if node.matched else '✗'} {node.detail}" for node in why.root.children),
            sep="\n",
        )
        print("count_members:", client.count_members("upgrade-candidates"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="localhost:50051")
    main(parser.parse_args().target)

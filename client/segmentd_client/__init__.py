"""Python client for segmentd, the service that answers which segments a user belongs to.

``segmentd_client.v1`` holds the stubs generated from ``proto/segmentd/v1`` (messages,
gRPC stubs and servicer bases, with typed ``.pyi`` stubs); regenerate them with
``uv run python scripts/gen_protos.py``, never edit them by hand.
"""

#!/usr/bin/env bash
# Fails when the committed stubs in client/segmentd_client/v1/ differ from what
# scripts/gen_protos.py generates from proto/ (someone edited a .proto without
# regenerating, edited generated code by hand, or left a stale stub).
#
# Usage (from anywhere in the repository): bash scripts/check_proto_drift.sh
# It regenerates in place, so on drift the working tree holds the fresh stubs:
# review them and commit.
set -euo pipefail

cd "$(git rev-parse --show-toplevel)"
generated_dir=client/segmentd_client/v1

if ! uv run python scripts/gen_protos.py; then
    echo "check_proto_drift: scripts/gen_protos.py failed (see above)." >&2
    exit 1
fi

drift=0
if ! git diff --exit-code --stat -- "$generated_dir"; then
    drift=1
fi
untracked=$(git status --porcelain --untracked-files=all -- "$generated_dir" | grep '^??' || true)
if [[ -n "$untracked" ]]; then
    echo "Generated files not tracked by git:"
    echo "$untracked"
    drift=1
fi

if (( drift )); then
    cat >&2 <<MSG
check_proto_drift: FAILED: $generated_dir is out of date with proto/.
Regenerate and commit the result:
    uv run python scripts/gen_protos.py
    git add $generated_dir
(Never edit the generated *_pb2*.py / *.pyi files by hand.)
MSG
    exit 1
fi
echo "check_proto_drift: OK: $generated_dir matches proto/."

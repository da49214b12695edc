"""The Dockerfile keeps its promises: pinned base, two stages, non-root, health probe.

No container engine runs in CI; what can be checked without one is checked here, and the
probe the HEALTHCHECK runs is tested against a real server in test_probe.py.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
INSTRUCTIONS = [line.strip() for line in DOCKERFILE.splitlines() if line.strip() and not line.startswith("#")]


def _instructions(keyword: str) -> list[str]:
    return [line for line in INSTRUCTIONS if line.split(maxsplit=1)[0] == keyword]


def test_dockerfile__base_image__pinned_by_tag_and_digest():
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, flags=re.MULTILINE)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+@sha256:[0-9a-f]{64}", base)


def test_dockerfile__build_then_runtime__from_the_same_pinned_base():
    assert _instructions("FROM") == ["FROM ${PYTHON_IMAGE} AS build", "FROM ${PYTHON_IMAGE} AS runtime"]
    assert "COPY --from=build /app/.venv /app/.venv" in INSTRUCTIONS
    runtime = DOCKERFILE.split("AS runtime", 1)[1]
    assert "uv " not in runtime and "pip install" not in runtime


def test_dockerfile__install__locked_without_development_tools():
    syncs = [line for line in INSTRUCTIONS if "uv sync" in line]
    assert syncs and all("--locked --no-dev --no-editable" in line for line in syncs)


def test_dockerfile__runs_as_a_numeric_non_root_user():
    (user,) = _instructions("USER")
    uid = user.split()[1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0


def test_dockerfile__healthcheck__the_probe_shipped_in_the_package():
    (healthcheck,) = _instructions("HEALTHCHECK")
    assert 'CMD ["segmentd-probe"' in healthcheck
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["segmentd-probe"] == "segmentd.observability.probe:main"


def test_dockerfile__configuration__by_environment_only():
    # No flags baked into the command: every setting comes from SEGMENTD_* variables.
    assert _instructions("CMD") == ['CMD ["segmentd", "serve"]']
    assert _instructions("ENTRYPOINT") == []
    assert "SEGMENTD_DATABASE_URL=sqlite:////data/segmentd.db" in DOCKERFILE

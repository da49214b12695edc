"""The README's tour, run as written: every command, and the output it shows.

A real `segmentd serve` starts in a fresh folder (with a copy of `examples/`), on a free
port instead of 50051; every `$ uv run segmentd ...` line of the tour then runs through the
command's entry point, `$ cat FILE` reads the file, and the ten-line scripts (the tour's and
client/README.md's) run in a fresh interpreter. What each shows must be what it prints.
"""

from __future__ import annotations

import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from segmentd.cli import main
from tests.observability.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CLIENT_README = (ROOT / "client" / "README.md").read_text(encoding="utf-8")
TOUR = README.split("\n## A tour\n", 1)[1].split("\n## ", 1)[0]
#: The metrics port the README shows; the test's server uses a free one in its place.
README_METRICS_PORT = 9090
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)


def _console_steps(text: str) -> list[Step]:
    steps: list[Step] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append(Step(line[2:]))
        else:
            steps[-1].expected.append(line)
    return steps


def _blocks(text: str) -> list[tuple[str, str]]:
    return [(match[1], match[2]) for match in BLOCK.finditer(text)]


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The tour's first command, `uv run segmentd serve`, in a fresh folder; yields its target."""
    (language, text), *_ = _blocks(TOUR)
    assert (language, text.strip()) == ("sh", f"uv run segmentd serve --metrics-port {README_METRICS_PORT}")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    metrics_port = free_port()
    monkeypatch.setenv("TOUR_METRICS_PORT", str(metrics_port))
    segmentd = Path(sys.executable).with_name("segmentd")
    process = subprocess.Popen(
        [str(segmentd), "serve", "--port", "0", "--host", "127.0.0.1", "--metrics-port", str(metrics_port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        port = _announced_port(process)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("SEGMENTD_TARGET", f"127.0.0.1:{port}")
        yield f"127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=30)
        assert process.stdout is not None
        process.stdout.close()
        assert status == 0


def _announced_port(process: subprocess.Popen[str]) -> int:
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 1)
        if ready:
            line = process.stdout.readline()
            if match := re.fullmatch(r"segmentd serving on port (\d+)\n", line):
                return int(match[1])
            assert line, f"segmentd serve exited with {process.poll()}"
    raise AssertionError("segmentd serve did not start within 30 s")


def _run(step: Step, capsys: pytest.CaptureFixture[str]) -> list[str]:
    words = shlex.split(step.command)
    if words[0] == "cat":
        return Path(words[1]).read_text(encoding="utf-8").splitlines()
    if words[0] == "curl":
        return _curl_grep(words)
    assert words[:3] == ["uv", "run", "segmentd"], step.command
    capsys.readouterr()
    status = main(words[3:])
    out, err = capsys.readouterr()
    assert status == 0, f"{step.command}: exit {status}: {err}"
    return (out + err).splitlines()


def _curl_grep(words: list[str]) -> list[str]:
    """``curl -s localhost:PORT/metrics | grep PATTERN``, on the port the test's server uses."""
    assert words[:2] == ["curl", "-s"] and words[3:5] == ["|", "grep"], words
    url = "http://" + words[2].replace(f":{README_METRICS_PORT}", f":{os.environ['TOUR_METRICS_PORT']}")
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return [line for line in text.splitlines() if re.search(words[5], line)]


def _script_output(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_readme_tour__every_command_prints_what_the_readme_shows(
    served: str, capsys: pytest.CaptureFixture[str]
):
    blocks = _blocks(TOUR)
    steps = [step for language, text in blocks if language == "console" for step in _console_steps(text)]
    assert len(steps) >= 11  # the parse found the tour
    for step in steps:
        assert _run(step, capsys) == step.expected, step.command

    # The ten-line script, and the output shown after it
    languages = [language for language, _ in blocks]
    script = languages.index("python")
    assert len(blocks[script][1].strip().splitlines()) <= 10
    assert _script_output(blocks[script][1]) == blocks[script + 1][1].splitlines()


def test_client_readme_script__exports_the_members(served: str, capsys: pytest.CaptureFixture[str]):
    # Given: the tour's data
    for language, text in _blocks(TOUR):
        for step in _console_steps(text) if language == "console" else []:
            loads = (" apply ", " segmentd import ", " events ")
            if any(word in step.command for word in loads):
                _run(step, capsys)
    # When
    (script,) = [
        text for language, text in _blocks(CLIENT_README.split("## Export", 1)[1]) if language == "python"
    ][:1]
    # Then
    assert _script_output(script) == ["user_id,plan", "user-2,FREE", "user-42,free"]

"""`segmentd apply | get | list | delete | diff` against a real server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from segmentd.cli.common import EXIT_CONFLICT, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE
from segmentd_client.definitions import load_definitions
from tests.cli.conftest import Segmentd

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "segments"

FREE_YAML = """\
name: free-plan
labels: {team: growth}
rule:
  condition: {attribute: plan, operator: EQUALS, value: free, ignore_case: true}
"""


async def test_apply__examples_folder__dependency_order_then_idempotent(segmentd: Segmentd):
    # When
    first = await segmentd("apply", "-f", str(EXAMPLES))
    again = await segmentd("apply", "-f", str(EXAMPLES))
    # Then: files in name order, a list file's segments in their order
    assert first.status == EXIT_OK, first.err
    assert first.out.splitlines() == [
        "created free-plan",
        "created detractors",
        "created promoters",
        "created upgrade-candidates",
    ]
    assert again.out.splitlines() == [
        "unchanged free-plan",
        "unchanged detractors",
        "unchanged promoters",
        "unchanged upgrade-candidates",
    ]


async def test_apply__recursive__the_starter_library_in_the_subfolder_too(segmentd: Segmentd):
    # When
    flat = await segmentd("apply", "-f", str(EXAMPLES), "--dry-run")
    recursive = await segmentd("apply", "-R", "-f", str(EXAMPLES), "--dry-run")
    # Then: the examples' own four, then with -R the starter library's as well
    assert flat.status == EXIT_OK and recursive.status == EXIT_OK, recursive.err
    starter = load_definitions(EXAMPLES / "starter")
    assert len(flat.out.splitlines()) == 4
    assert len(recursive.out.splitlines()) == 4 + len(starter) > 4


async def test_apply__changed_file__updated_with_versions_and_dry_run_writes_nothing(
    segmentd: Segmentd, tmp_path: Path
):
    # Given
    path = tmp_path / "free.yaml"
    path.write_text(FREE_YAML)
    assert (await segmentd("apply", "-f", str(path))).status == EXIT_OK
    path.write_text(FREE_YAML.replace("growth", "sales"))
    # When
    dry = await segmentd("apply", "-f", str(path), "--dry-run")
    still = await segmentd("get", "free-plan", "-o", "json")
    real = await segmentd("apply", "-f", str(path))
    # Then
    assert dry.out.splitlines() == ["updated free-plan (v1 -> v2) (dry run)"]
    assert json.loads(still.out)["version"] == 1
    assert real.out.splitlines() == ["updated free-plan (v1 -> v2)"]


async def test_apply__dry_run_of_new_segments__referenced_first_and_nothing_created(segmentd: Segmentd):
    result = await segmentd(
        "apply",
        "-f",
        str(EXAMPLES / "upgrade-candidates.yaml"),
        "-f",
        str(EXAMPLES / "free-plan.yaml"),
        "--dry-run",
    )
    assert result.out.splitlines() == ["created free-plan (dry run)", "created upgrade-candidates (dry run)"]
    assert (await segmentd("get", "free-plan")).status == EXIT_NOT_FOUND


@pytest.mark.parametrize(
    ("text", "status", "message"),
    [
        pytest.param(
            "name: x\nrule: {all: {rules: [{condition: {attribute: a}}]}}\n",
            EXIT_INVALID,
            "segment.rule.all.rules[0].condition",
            id="server-refuses",
        ),
        pytest.param(
            "name: x\nrules: {}\n",
            EXIT_INVALID,
            "a segment definition is a mapping with a name and a rule",
            id="no-rule",
        ),
        pytest.param(
            "name: x\nrule: {all: {}}\nlables: {}\n", EXIT_INVALID, "unknown key(s) 'lables'", id="typo"
        ),
        pytest.param(
            "name: x\nrule: {segment: {name: nowhere}}\n", EXIT_INVALID, "nowhere", id="dangling-reference"
        ),
        pytest.param(
            "- {name: a, rule: {segment: {name: b}}}\n- {name: b, rule: {segment: {name: a}}}\n",
            EXIT_INVALID,
            "cycle: a -> b -> a",
            id="cycle",
        ),
    ],
)
async def test_apply__bad_definition__message_and_exit_code(
    segmentd: Segmentd, tmp_path: Path, text: str, status: int, message: str
):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = await segmentd("apply", "-f", str(path))
    assert result.status == status
    assert message in result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize("dry_run", [False, True], ids=["apply", "dry-run"])
async def test_apply__folder_with_one_bad_definition__nothing_written(
    segmentd: Segmentd, tmp_path: Path, dry_run: bool
):
    # Given: a good definition, one referencing it, and one whose reference dangles
    (tmp_path / "a-free.yaml").write_text(FREE_YAML)
    (tmp_path / "b-uses-free.yaml").write_text("name: uses-free\nrule: {segment: {name: free-plan}}\n")
    (tmp_path / "c-dangling.yaml").write_text("name: dangling\nrule: {segment: {name: nowhere}}\n")
    # When
    result = await segmentd("apply", "-f", str(tmp_path), *(["--dry-run"] if dry_run else []))
    # Then: the server checked all three together (the dry run too) and wrote none of them
    assert (result.status, result.out) == (EXIT_INVALID, "")
    assert "segment 'dangling'" in result.err and "'nowhere' does not exist" in result.err
    assert (await segmentd("get", "free-plan")).status == EXIT_NOT_FOUND


async def test_apply__dry_run_of_an_invalid_change__refused_by_the_server(segmentd: Segmentd, tmp_path: Path):
    # Given
    path = tmp_path / "free.yaml"
    path.write_text(FREE_YAML)
    assert (await segmentd("apply", "-f", str(path))).status == EXIT_OK
    path.write_text("name: free-plan\nrule: {in_list: {name: no-such-list}}\n")
    # When
    dry = await segmentd("apply", "-f", str(path), "--dry-run")
    # Then
    assert dry.status == EXIT_INVALID and "user list 'no-such-list' does not exist" in dry.err
    assert (await segmentd("get", "free-plan", "-o", "json")).out.count('"version": 1') == 1


async def test_apply__empty_folder__invalid_input(segmentd: Segmentd, tmp_path: Path):
    result = await segmentd("apply", "-f", str(tmp_path))
    assert (result.status, result.out) == (EXIT_INVALID, "")
    assert "no segment definitions" in result.err


async def test_apply__missing_file__usage_error(segmentd: Segmentd, tmp_path: Path):
    result = await segmentd("apply", "-f", str(tmp_path / "nope.yaml"))
    assert result.status == EXIT_USAGE
    assert "does not exist" in result.err


async def test_get__yaml_round_trips_through_apply(segmentd: Segmentd, tmp_path: Path):
    # Given
    await segmentd("apply", "-f", str(EXAMPLES / "free-plan.yaml"))
    # When
    shown = await segmentd("get", "free-plan")
    # Then
    document = yaml.safe_load(shown.out)
    assert document["rule"] == {
        "condition": {"attribute": "plan", "operator": "EQUALS", "value": "free", "ignore_case": True}
    }
    assert (document["version"], document["labels"]) == (1, {"team": "growth"})
    path = tmp_path / "again.yaml"
    path.write_text(shown.out)
    assert (await segmentd("apply", "-f", str(path))).out == "unchanged free-plan\n"


async def test_list__label_filter_and_columns(segmentd: Segmentd):
    await segmentd("apply", "-f", str(EXAMPLES))
    listed = await segmentd("list", "--label", "team=success")
    assert listed.out.splitlines()[0].split() == ["NAME", "VERSION", "LABELS", "DESCRIPTION"]
    assert [line.split()[0] for line in listed.out.splitlines()[1:]] == ["detractors", "promoters"]
    assert "team=success" in listed.out
    assert (await segmentd("list", "--label", "team")).status == EXIT_USAGE


async def test_delete__referenced_refused_then_deleted(segmentd: Segmentd):
    await segmentd("apply", "-f", str(EXAMPLES))
    refused = await segmentd("delete", "free-plan")
    assert refused.status == EXIT_CONFLICT and "upgrade-candidates" in refused.err
    assert (await segmentd("delete", "upgrade-candidates")).out == "deleted upgrade-candidates\n"
    assert (await segmentd("delete", "upgrade-candidates")).status == EXIT_NOT_FOUND


async def test_diff__last_two_versions_node_by_node(segmentd: Segmentd, tmp_path: Path):
    # Given: three versions
    path = tmp_path / "free.yaml"
    for text in (
        FREE_YAML,
        FREE_YAML.replace("value: free", "value: trial"),
        FREE_YAML.replace("growth", "sales"),
    ):
        path.write_text(text)
        await segmentd("apply", "-f", str(path))
    # When
    last = await segmentd("diff", "free-plan")
    first_to_second = await segmentd("diff", "free-plan", "1", "2")
    # Then
    assert last.out.splitlines() == [
        "free-plan: v2 -> v3",
        '  labels.team: "growth" -> "sales"',
        '  rule.condition.value: "trial" -> "free"',
    ]
    assert first_to_second.out.splitlines()[1:] == ['  rule.condition.value: "free" -> "trial"']
    assert (await segmentd("diff", "free-plan", "1")).status == EXIT_USAGE
    assert (await segmentd("diff", "free-plan", "1", "9")).status == EXIT_NOT_FOUND

"""API keys and the scope table, without a server."""

from __future__ import annotations

from typing import Any

import pytest

from segmentd.config import Settings
from segmentd.security.exposure import exposure_warnings, is_loopback
from segmentd.security.keys import bearer_key, hash_matches, key_hash, key_id_of, new_key
from segmentd.security.scopes import SCOPE_BY_METHOD, SCOPES, grants, is_open, required_scope, unknown_scopes
from segmentd.server import SERVICE_NAMES
from segmentd_client.v1 import evaluation_pb2, profiles_pb2, segments_pb2


def _served_methods() -> list[str]:
    return [
        f"/{method.full_name.rpartition('.')[0]}/{method.name}"
        for module in (segments_pb2, profiles_pb2, evaluation_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        if service.full_name in SERVICE_NAMES
        for method in service.methods
    ]


def test_scope_table__every_served_method__has_a_scope():
    # A method added without an entry would be refused to every key: this names it first.
    assert [method for method in _served_methods() if method not in SCOPE_BY_METHOD] == []


def test_scope_table__scopes__are_the_documented_ones():
    assert set(SCOPE_BY_METHOD.values()) == set(SCOPES) - {"admin"}


@pytest.mark.parametrize(
    ("method", "scope"),
    [
        ("/segmentd.v1.EvaluationService/EvaluateUser", "evaluate"),
        ("/segmentd.v1.EvaluationService/ExplainEvaluation", "evaluate"),
        ("/segmentd.v1.EvaluationService/ListSegmentMembers", "read"),
        ("/segmentd.v1.EvaluationService/GetSegmentStats", "read"),
        ("/segmentd.v1.ProfileService/GetProfile", "read"),
        ("/segmentd.v1.ProfileService/ImportProfiles", "write:profiles"),
        ("/segmentd.v1.SegmentService/DeleteSegment", "write:segments"),
        ("/segmentd.v1.UserListService/ReplaceUserListMembers", "write:profiles"),
        ("/segmentd.v1.UserListService/ListUserLists", "read"),
    ],
)
def test_required_scope__method__its_scope(method: str, scope: str):
    assert required_scope(method) == scope
    assert grants({scope}, method)
    assert grants({"admin"}, method)
    assert not grants(set(SCOPES) - {scope, "admin"}, method)


def test_grants__unknown_method__denied_even_to_admin():
    assert not grants(SCOPES, "/segmentd.v1.SegmentService/DropEverything")
    assert required_scope("/segmentd.v1.SegmentService/DropEverything") is None


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("/grpc.health.v1.Health/Check", True),
        ("/grpc.health.v1.Health/Watch", True),
        ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", True),
        ("/segmentd.v1.EvaluationService/EvaluateUser", False),
        ("/grpc.health.v1.HealthX/Check", False),
    ],
)
def test_is_open__method__only_health_and_reflection(method: str, expected: bool):
    assert is_open(method) is expected


def test_unknown_scopes__misspelt__named_in_order():
    assert unknown_scopes(["read", "wirte:segments", "admin", "root"]) == ["wirte:segments", "root"]


def test_new_key__two_keys__distinct_and_well_formed():
    (first_id, first), (second_id, second) = new_key(), new_key()
    assert first != second and first_id != second_id
    assert key_id_of(first) == first_id and key_id_of(second) == second_id
    assert first.startswith(f"sdk_{first_id}_")


def test_key_hash__key__sha256_that_matches_only_it():
    key_id, key = new_key()
    stored = key_hash(key)
    assert len(stored) == 64 and key not in stored
    assert hash_matches(key, stored)
    assert not hash_matches(key[:-1] + ("A" if key[-1] != "A" else "B"), stored)


@pytest.mark.parametrize("text", ["", "sdk_", "sdk_0123456789ab_short", "Bearer x", "sdk_XYZ" + "a" * 50])
def test_key_id_of__not_a_key__none(text: str):
    assert key_id_of(text) is None


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer a b", None),
        (b"Bearer abc", None),
        (None, None),
    ],
)
def test_bearer_key__authorization_value__its_key(authorization: str | bytes | None, expected: str | None):
    assert bearer_key(authorization) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("[::1]", True),
        ("::1", True),
        ("localhost", True),
        ("[::]", False),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
        ("segmentd.internal", False),
    ],
)
def test_is_loopback__host__only_this_machine(host: str, expected: bool):
    assert is_loopback(host) is expected


def test_exposure_warnings__default_settings__auth_and_tls_off_said():
    warnings = exposure_warnings(Settings())
    assert len(warnings) == 2
    assert "access control is OFF" in warnings[0] and "--require-auth" in warnings[0]
    assert "TLS is off" in warnings[1]


def test_exposure_warnings__loopback_or_protected__nothing_said():
    assert exposure_warnings(Settings(host="127.0.0.1")) == []
    protected = Settings(require_auth=True, tls_cert="c.pem", tls_key="k.pem")
    assert exposure_warnings(protected) == []


@pytest.mark.parametrize(
    "tls",
    [{"tls_cert": "c.pem"}, {"tls_key": "k.pem"}, {"tls_client_ca": "ca.pem"}],
)
def test_settings__incomplete_tls__refused(tls: dict[str, Any]):
    with pytest.raises(ValueError, match="tls_"):
        Settings(**tls)

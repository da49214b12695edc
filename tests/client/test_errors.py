"""Status codes to exceptions, and the field named by an INVALID_ARGUMENT message."""

from __future__ import annotations

import grpc
import pytest

from segmentd_client import errors


@pytest.mark.parametrize(
    ("code", "exception"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgument),
        (grpc.StatusCode.NOT_FOUND, errors.NotFound),
        (grpc.StatusCode.ALREADY_EXISTS, errors.AlreadyExists),
        (grpc.StatusCode.ABORTED, errors.Aborted),
        (grpc.StatusCode.FAILED_PRECONDITION, errors.FailedPrecondition),
        (grpc.StatusCode.UNAUTHENTICATED, errors.Unauthenticated),
        (grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDenied),
        (grpc.StatusCode.UNAVAILABLE, errors.Unavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, errors.DeadlineExceeded),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, errors.ResourceExhausted),
        (grpc.StatusCode.CANCELLED, errors.Cancelled),
        (grpc.StatusCode.INTERNAL, errors.ServerError),
        (grpc.StatusCode.UNKNOWN, errors.ServerError),
        (grpc.StatusCode.UNIMPLEMENTED, errors.ServerError),
    ],
)
def test_exception_class_for_grpc_status__table(code, exception):
    assert errors.exception_class_for_grpc_status(code) is exception


def test_conflict__already_exists_and_aborted_are_conflicts():
    assert issubclass(errors.AlreadyExists, errors.Conflict)
    assert issubclass(errors.Aborted, errors.Conflict)
    assert all(
        issubclass(cls, errors.SegmentdError)
        for cls in (errors.NotFound, errors.Conflict, errors.Unavailable, errors.ServerError)
    )


@pytest.mark.parametrize(
    ("details", "field", "reason"),
    [
        (
            "segment.rule.all.rules[2].condition.value: must be a number",
            "segment.rule.all.rules[2].condition.value",
            "must be a number",
        ),
        (
            "profiles[3].user_id: must be 1 to 256 characters (1 of 2)",
            "profiles[3].user_id",
            "must be 1 to 256 characters (1 of 2)",
        ),
        ("page_size: must not be negative", "page_size", "must not be negative"),
        ("something went wrong", "", "something went wrong"),
        ("a b: not a path", "", "a b: not a path"),
    ],
)
def test_invalid_argument__field_parsed_from_the_message(details, field, reason):
    error = errors.InvalidArgument(details)
    assert (error.field, error.reason, error.code) == (field, reason, grpc.StatusCode.INVALID_ARGUMENT)
    assert str(error) == f"INVALID_ARGUMENT: {details}"


async def test_from_grpc_error__real_failed_call__status_and_cause_kept():
    # Given: a call to an address where nothing listens
    async with grpc.aio.insecure_channel("127.0.0.1:9") as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/segmentd.v1.SegmentService/GetSegment"
        )
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call(b"", timeout=0.5)
    # When
    error = errors.from_grpc_error(raised.value)
    # Then
    assert isinstance(error, errors.Unavailable | errors.DeadlineExceeded)
    assert error.__cause__ is raised.value

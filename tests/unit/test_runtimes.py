"""The runtime table: complete against the Lambda API's enum, ordered dates, lookups, block rules."""

from __future__ import annotations

import datetime as dt

import botocore.session
import pytest

from lamina.builder.targets import BUILDABLE, BuildTarget, TargetError
from lamina.domain import runtimes as R
from lamina.domain.functions import CUSTOM_RUNTIMES
from lamina.errors import InvalidParameterValueException
from lamina.services.lambda_.functions import check_not_blocked

API_RUNTIMES = botocore.session.get_session().get_service_model("lambda").shape_for("Runtime").enum


def test_every_python_and_os_only_runtime_of_the_api_is_in_the_table() -> None:
    wanted = {r for r in API_RUNTIMES if r.startswith(("python", "provided"))}
    assert wanted <= {r.identifier for r in R.RUNTIMES}
    assert {r.identifier for r in R.RUNTIMES} <= set(API_RUNTIMES)


def test_identifiers_are_unique() -> None:
    ids = [r.identifier for r in R.RUNTIMES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("runtime", R.RUNTIMES, ids=lambda r: r.identifier)
def test_dates_are_ordered(runtime: R.Runtime) -> None:
    dates = [d for d in (runtime.deprecated, runtime.block_create, runtime.block_update) if d is not None]
    assert dates == sorted(dates)
    # A block without a deprecation (or an update block without a create block) does not exist.
    if runtime.block_create is not None:
        assert runtime.deprecated is not None
    if runtime.block_update is not None:
        assert runtime.block_create is not None


@pytest.mark.parametrize("runtime", R.RUNTIMES, ids=lambda r: r.identifier)
def test_rows_are_consistent(runtime: R.Runtime) -> None:
    assert runtime.base_image.startswith("public.ecr.aws/lambda/")
    if runtime.family is R.Family.PYTHON:
        major, minor = runtime.python_version or (0, 0)
        assert runtime.identifier == f"python{major}.{minor}"
        assert runtime.base_image == f"public.ecr.aws/lambda/python:{major}.{minor}"
    else:
        assert runtime.python_version is None
        assert runtime.base_image.endswith(f":{runtime.userland.key}")
    if runtime.userland is R.AMAZON_LINUX:
        assert runtime.architectures == (R.Architecture.X86_64,)
    else:
        assert runtime.architectures == (R.Architecture.X86_64, R.Architecture.ARM64)


@pytest.mark.parametrize(
    ("identifier", "userland"),
    [
        ("python3.7", R.AMAZON_LINUX),
        ("python3.8", R.AMAZON_LINUX_2),
        ("python3.11", R.AMAZON_LINUX_2),
        ("python3.12", R.AMAZON_LINUX_2023),
        ("python3.14", R.AMAZON_LINUX_2023),
        ("provided", R.AMAZON_LINUX),
        ("provided.al2", R.AMAZON_LINUX_2),
        ("provided.al2023", R.AMAZON_LINUX_2023),
    ],
)
def test_userlands(identifier: str, userland: R.Userland) -> None:
    assert R.get(identifier).userland is userland


def test_userland_limits() -> None:
    assert (R.AMAZON_LINUX_2.glibc_text, R.AMAZON_LINUX_2023.glibc_text) == ("2.26", "2.34")
    assert (
        R.AMAZON_LINUX_2.glibcxx_text == "GLIBCXX_3.4.24" and R.AMAZON_LINUX_2.cxxabi_text == "CXXABI_1.3.11"
    )
    assert R.AMAZON_LINUX_2023.glibcxx_text == "GLIBCXX_3.4.29"
    assert R.AMAZON_LINUX_2023.cxxabi_text == "CXXABI_1.3.13"
    levels = [(u.glibc, u.glibcxx, u.cxxabi) for u in R.USERLANDS]
    assert levels == sorted(levels)  # oldest to newest, each limit rising


def test_lookups() -> None:
    assert R.lookup("python3.12") is R.get("python3.12")
    assert R.lookup("nodejs22.x") is None
    with pytest.raises(ValueError, match="'nodejs22.x'"):
        R.get("nodejs22.x")
    assert [r.identifier for r in R.os_only_runtimes()] == ["provided.al2023", "provided.al2", "provided"]
    assert CUSTOM_RUNTIMES == ("provided", "provided.al2", "provided.al2023")
    assert R.python_runtimes()[0].identifier == "python3.15"
    assert R.Architecture.ARM64.machine == "aarch64" and R.get("python3.12").supports("arm64")
    assert not R.get("python3.7").supports("arm64")
    assert R.get("python3.12").cpython_tag == "cp312" and R.get("provided.al2").cpython_tag is None


@pytest.mark.parametrize(
    ("identifier", "day", "create", "update"),
    [
        ("python3.8", dt.date(2026, 12, 6), False, False),
        ("python3.8", dt.date(2027, 1, 31), False, False),
        ("python3.8", dt.date(2027, 2, 1), True, False),  # "starting on" the day
        ("python3.9", dt.date(2027, 3, 3), True, True),
        ("python3.10", dt.date(2026, 12, 6), False, False),
        ("python3.12", dt.date(2026, 12, 6), False, False),
        ("python3.7", dt.date(2026, 12, 6), True, True),
        ("provided", dt.date(2024, 2, 7), False, False),
        ("provided", dt.date(2024, 2, 8), True, False),
        ("provided", dt.date(2026, 12, 6), True, True),
        ("python3.15", dt.date(2099, 1, 1), False, False),  # not scheduled
        ("nodejs22.x", dt.date(2099, 1, 1), False, False),  # outside the table: never blocked here
    ],
)
def test_blocks(identifier: str, day: dt.date, create: bool, update: bool) -> None:
    assert R.create_blocked(identifier, day) is create
    assert R.update_blocked(identifier, day) is update


def test_deprecation_stage() -> None:
    assert R.get("python3.10").is_deprecated(dt.date(2026, 12, 6))
    assert not R.get("python3.11").is_deprecated(dt.date(2026, 12, 6))


def test_utc_date_and_refusal() -> None:
    midnight = int(dt.datetime(2027, 2, 1, tzinfo=dt.UTC).timestamp() * 1000)
    assert R.utc_date(midnight - 1) == dt.date(2027, 1, 31)
    assert R.utc_date(midnight) == dt.date(2027, 2, 1)
    check_not_blocked("python3.8", midnight - 1, create=True)
    with pytest.raises(InvalidParameterValueException) as e:
        check_not_blocked("python3.8", midnight, create=True)
    assert str(e.value.message) == (
        "The runtime parameter of python3.8 is no longer supported for creating or updating AWS Lambda "
        "functions. We recommend you use a supported runtime while creating or updating functions."
    )
    check_not_blocked("python3.8", midnight, create=False)  # updates until Mar 3, 2027


def test_builder_reads_the_table() -> None:
    assert [r.identifier for r in BUILDABLE][:2] == ["python3.8", "python3.9"]
    for runtime in BUILDABLE:
        target = BuildTarget.parse(runtime.identifier, "arm64")
        assert target.glibc == runtime.userland.glibc
        assert target.base_image == runtime.userland.name
    with pytest.raises(TargetError, match="unknown runtime 'python3.7'"):
        BuildTarget.parse("python3.7")

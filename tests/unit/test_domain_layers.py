"""Pure layer logic: ARNs, shapes, statements, grants, markers, timestamps, signed URLs, accounts."""

from __future__ import annotations

import pytest

from lamina.domain import layers as L
from lamina.domain.accounts import AccountsError, is_loopback, parse_accounts
from lamina.domain.arns import LayerRef, parse_layer_arn, resolve_layer_name
from lamina.domain.clock import aws_timestamp
from lamina.domain.presign import UrlSigner


def version(**kw: object) -> L.LayerVersion:
    base = dict(
        account="123456789012",
        region="us-east-1",
        name="n",
        version=2,
        description="",
        created_ms=0,
        compatible_runtimes=None,
        compatible_architectures=None,
        license_info=None,
        sha256_hex="00" * 32,
        code_size=1,
        unzipped_size=1,
    )
    base.update(kw)
    return L.LayerVersion(**base)  # type: ignore[arg-type]


def test_parse_layer_arns() -> None:
    assert parse_layer_arn("arn:aws:lambda:us-east-1:123456789012:layer:n:3") == LayerRef(
        "us-east-1", "123456789012", "n", 3
    )
    assert parse_layer_arn("arn:aws:lambda:us-east-1:123456789012:layer:n") == LayerRef(
        "us-east-1", "123456789012", "n", None
    )
    assert parse_layer_arn("arn:aws:lambda:us-east-1:123:layer:n") is None


def test_layer_name_or_arn() -> None:
    assert resolve_layer_name("n", region="r-1", account="111111111111") == LayerRef(
        "r-1", "111111111111", "n"
    )
    other = resolve_layer_name("arn:aws:lambda:eu-west-1:222222222222:layer:x", region="r", account="1")
    assert (other.account, other.region) == ("222222222222", "eu-west-1")
    with pytest.raises(ValueError):
        resolve_layer_name("arn:aws:lambda:eu-west-1:222222222222:layer:x:1", region="r", account="1")


def test_aws_timestamp_has_millis_and_offset() -> None:
    assert aws_timestamp(1542236632894) == "2018-11-14T23:03:52.894+0000"
    assert aws_timestamp(5) == "1970-01-01T00:00:00.005+0000"


def test_list_item_field_presence() -> None:
    bare = L.list_item(version())
    assert set(bare) == {"LayerVersionArn", "Version", "Description", "CreatedDate"}
    full = L.list_item(
        version(compatible_runtimes=(), compatible_architectures=("arm64",), license_info="MIT")
    )
    assert full["CompatibleRuntimes"] == [] and full["CompatibleArchitectures"] == ["arm64"]
    assert L.full_shape(version(), "url")["Content"]["CodeSha256"] == "A" * 43 + "="


@pytest.mark.parametrize(
    ("principal", "rendered"),
    [
        ("*", "*"),
        ("111111111111", {"AWS": "arn:aws:iam::111111111111:root"}),
        ("arn:aws:iam::111111111111:root", {"AWS": "arn:aws:iam::111111111111:root"}),
    ],
    ids=["star", "account", "root-arn"],
)
def test_statement_principal(principal: str, rendered: object) -> None:
    s = L.make_statement("s", principal, "arn")
    assert list(s) == ["Sid", "Effect", "Principal", "Action", "Resource"]
    assert s["Principal"] == rendered


def test_grants() -> None:
    star = (L.make_statement("a", "*", "r"),)
    one = (L.make_statement("b", "111111111111", "r"),)
    org = (L.make_statement("c", "*", "r", "o-abcdefghij"),)
    assert L.grants(star, "999999999999")
    assert L.grants(one, "111111111111") and not L.grants(one, "222222222222")
    assert not L.grants(org, "111111111111")
    assert not L.grants((), "111111111111")


def test_markers_round_trip_and_reject_garbage() -> None:
    m = L.encode_marker("v", 17)
    assert L.decode_marker(m, "v") == 17
    assert L.decode_marker(m, "n") is None
    assert L.decode_marker("!!!", "v") is None
    assert L.decode_marker(L.encode_marker("n", "layer-a"), "n") == "layer-a"


def test_filters() -> None:
    v = version(compatible_runtimes=("python3.12",), compatible_architectures=("x86_64",))
    assert L.matches(v, None, None) and L.matches(v, "python3.12", "x86_64")
    assert not L.matches(v, "python3.11", None) and not L.matches(v, None, "arm64")
    assert not L.matches(version(), "python3.12", None)


def test_signed_urls() -> None:
    s = UrlSigner(b"k" * 32)
    q = dict(p.split("=") for p in s.query("/p", now=1000).split("&"))
    assert q["Expires"] == "1600"
    assert s.check("/p", q["Expires"], q["Signature"], now=1599) is None
    assert s.check("/p", q["Expires"], q["Signature"], now=1601) == "Request has expired"
    assert s.check("/q", q["Expires"], q["Signature"], now=1000) is not None
    assert s.check("/p", "1700", q["Signature"], now=1000) is not None
    assert UrlSigner(b"x" * 32).check("/p", q["Expires"], q["Signature"], now=1000) is not None


def test_accounts() -> None:
    doc = {"accounts": [{"account_id": "111111111111", "access_key_id": "a", "secret_access_key": "s"}]}
    assert parse_accounts(doc)[0].account_id == "111111111111"
    with pytest.raises(AccountsError):
        parse_accounts({"accounts": doc["accounts"] * 2})  # duplicate key
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1") and not is_loopback("example.com")


def test_accounts_user_entry() -> None:
    entry = {"account_id": "000000000000", "access_key_id": "k", "secret_access_key": "s"}
    assert parse_accounts({"accounts": [entry]})[0].user is None
    assert parse_accounts({"accounts": [{**entry, "user": "ci.bot@x"}]})[0].user == "ci.bot@x"
    for bad in ("", "has space", "x" * 65, 7, "caf\u00e9"):
        with pytest.raises(AccountsError, match=r"accounts\[0\]: user must be an IAM user name"):
            parse_accounts({"accounts": [{**entry, "user": bad}]})


def test_aws_timestamp_matches_strftime() -> None:
    import datetime as dt
    import random

    from lamina.domain.clock import aws_timestamp

    rng = random.Random(7)
    for ms in [0, 999, 1000, 1_541_236_232_894, 4_102_444_799_999] + [
        rng.randrange(0, 4_102_444_800_000) for _ in range(2000)
    ]:
        t = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
        assert aws_timestamp(ms) == t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+0000"

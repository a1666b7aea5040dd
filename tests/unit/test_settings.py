"""Settings: declared once; flags over environment over defaults; bad values named."""

from __future__ import annotations

import argparse
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from lamina.net.uplink import UplinkKind
from lamina.settings import Settings, SettingsError


def parse(argv: list[str], environ: dict[str, str] | None = None) -> Settings:
    parser = argparse.ArgumentParser()
    Settings.add_arguments(parser)
    return Settings.from_sources(parser.parse_args(argv), environ or {})


def test_defaults() -> None:
    s = parse([])
    assert (s.host, s.port, s.max_environments, s.idle_timeout_s) == ("127.0.0.1", 4566, 32, 600.0)
    assert s.uplink.kind is UplinkKind.HOST
    assert s.public_ip_pool == IPv4Network("203.0.113.0/24")
    assert s.vpc_idle_reclaim_s == 14 * 24 * 3600
    assert s.accounts_file is None
    assert str(s.api_rate_limit) == "100/1000"
    assert str(parse(["--api-rate-limit", "off"]).api_rate_limit) == "off"
    assert (s.uid_range.first, s.uid_range.last) == (1879048192, 1879113727)
    assert str(parse(["--uid-range", "200000-200999"]).uid_range) == "200000-200999"


def test_environment_then_flag() -> None:
    env = {"LAMINA_PORT": "5000", "LAMINA_UPLINK": "none", "LAMINA_DATA_DIR": "/tmp/x"}
    s = parse([], env)
    assert (s.port, s.uplink.kind, s.data_dir) == (5000, UplinkKind.NONE, Path("/tmp/x"))
    s = parse(["--port", "6000", "--uplink", "netns:inet"], env)
    assert (s.port, str(s.uplink)) == (6000, "netns:inet")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LAMINA_PORT": "many"}, "LAMINA_PORT='many'"),
        ({"LAMINA_IDLE_TIMEOUT": "-1"}, "must be a non-negative number"),
        ({"LAMINA_UPLINK": "wifi"}, "expected host, none or netns:NAME"),
        ({"LAMINA_PUBLIC_IP_POOL": "10.0.0.0/31"}, "holds no address"),
        ({"LAMINA_LOG_LEVEL": "loud"}, "expected one of debug"),
        ({"LAMINA_API_RATE_LIMIT": "fast"}, "LAMINA_API_RATE_LIMIT='fast': expected RATE"),
        ({"LAMINA_UID_RANGE": "5000"}, "expected FIRST-LAST"),
        ({"LAMINA_UID_RANGE": "0-65535"}, "1000 <= FIRST"),
        ({"LAMINA_UID_RANGE": "300000-200000"}, "FIRST <= LAST"),
        ({"LAMINA_UID_RANGE": "2147483000-2147483647"}, "LAST <= 2147483646"),
    ],
    ids=[
        "port",
        "negative",
        "uplink",
        "pool",
        "log-level",
        "rate-limit",
        "uids",
        "uid-root",
        "uids-reversed",
        "uids-signed",
    ],
)
def test_bad_environment_values_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        parse([], env)


def test_bad_flag_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(["--public-ip-pool", "169.254.0.0/16"])
    assert "overlaps" in capsys.readouterr().err


def test_every_option_has_a_flag_an_environment_variable_and_help() -> None:
    parser = argparse.ArgumentParser()
    Settings.add_arguments(parser)
    text = parser.format_help()
    for f in Settings.options():
        assert f.metadata["flag"] in text
        assert f"env {f.metadata['env']}" in " ".join(text.split())
    flags = [f.metadata["flag"] for f in Settings.options()]
    assert len(flags) == len(set(flags))


def test_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().port = 1  # type: ignore[misc]


def test_the_readme_lists_every_option() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for f in Settings.options():
        assert f"| `{f.metadata['flag']}` | `{f.metadata['env']}` |" in readme


def test_empty_flag_is_unset_and_numbers_are_checked() -> None:
    s = parse(["--data-dir", "", "--accounts", ""], {"LAMINA_DATA_DIR": "/tmp/y"})
    assert (s.data_dir, s.accounts_file) == (Path("/tmp/y"), None)
    for env in (
        {"LAMINA_VPC_IDLE_RECLAIM": "nan"},
        {"LAMINA_ENI_RELEASE_DELAY": "inf"},
        {"LAMINA_PORT": "70000"},
    ):
        with pytest.raises(SettingsError):
            parse([], env)


def test_allow_egress_to_repeats_and_the_variable_takes_a_list() -> None:
    assert parse([], {}).allow_egress_to == ()
    s = parse(["--allow-egress-to", "10.0.0.5/32", "--allow-egress-to", "192.168.1.0/24"], {})
    assert s.allow_egress_to == (IPv4Network("10.0.0.5/32"), IPv4Network("192.168.1.0/24"))
    # The flag wins over the variable, which is a comma-separated list.
    env = {"LAMINA_ALLOW_EGRESS_TO": "10.1.0.0/16, 172.16.0.0/12"}
    assert parse([], env).allow_egress_to == (IPv4Network("10.1.0.0/16"), IPv4Network("172.16.0.0/12"))
    assert parse(["--allow-egress-to", "10.0.0.5/32"], env).allow_egress_to == (IPv4Network("10.0.0.5/32"),)
    with pytest.raises(SettingsError, match="LAMINA_ALLOW_EGRESS_TO"):
        parse([], {"LAMINA_ALLOW_EGRESS_TO": "10.0.0.0/33"})
    with pytest.raises(SystemExit):
        parse(["--allow-egress-to", "nonsense"], {})

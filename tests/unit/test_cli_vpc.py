"""``lamina vpc``'s decisions that need no server: which servers are on this host (only theirs
are asked where namespaces are published), and the command line."""

from __future__ import annotations

import argparse

import pytest

from lamina.cli import vpc


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:4566", True),
        ("https://localhost:4566", True),
        ("http://[::1]:4566", True),
        ("http://192.0.2.1:4566", False),  # TEST-NET-1: never an address of this host
        ("http://lamina.invalid:4566", False),  # does not resolve
    ],
)
def test_only_a_server_on_this_host_is_asked_for_its_data_directory(url: str, local: bool) -> None:
    assert vpc.local_endpoint(url) is local


def test_run_takes_a_reattach_timeout_and_release_an_interface() -> None:
    parser = argparse.ArgumentParser()
    vpc.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["vpc", "run", "--subnet", "subnet-1", "--", "true"])
    assert (args.reattach_timeout, args.data_dir is None or isinstance(args.data_dir, str)) == (
        vpc.REATTACH_TIMEOUT_S,
        True,
    )
    args = parser.parse_args(["vpc", "run", "--subnet", "subnet-1", "--reattach-timeout", "5", "--", "true"])
    assert args.reattach_timeout == 5.0
    args = parser.parse_args(["vpc", "release", "eni-0123456789abcdef0"])
    assert (args.vpc_command, args.interface) == ("release", "eni-0123456789abcdef0")

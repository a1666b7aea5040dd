"""``lamina`` command line: ``lamina server``, ``lamina logs``, ``lamina vpc``, ``lamina layer``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from lamina import __version__
from lamina.domain.accounts import (
    DEFAULT_ACCOUNT,
    Account,
    AccountsError,
    is_loopback,
    parse_accounts,
    uses_default_credentials,
)


def default_data_dir() -> Path:
    """``/var/lib/lamina`` as root, else ``~/.local/share/lamina``."""
    if os.geteuid() == 0:
        return Path("/var/lib/lamina")
    return Path.home() / ".local" / "share" / "lamina"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"lamina: {name} must be a number, got {value!r}") from None


def load_accounts(path: str | None) -> tuple[Account, ...]:
    if not path:
        return (DEFAULT_ACCOUNT,)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as exc:
        raise SystemExit(f"lamina: cannot read accounts file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SystemExit(f"lamina: accounts file {path} is not valid JSON: {exc}") from None
    try:
        return parse_accounts(doc)
    except AccountsError as exc:
        raise SystemExit(f"lamina: accounts file {path}: {exc}") from None


def _uplink(text: str) -> Any:
    from lamina.net.uplink import UplinkSpec

    try:
        return UplinkSpec.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _public_ip_pool(text: str) -> Any:
    from ipaddress import IPv4Network

    from lamina.domain.dataplane import LINK_BLOCK

    try:
        pool = IPv4Network(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an IPv4 block: {exc}") from None
    if pool.prefixlen > 30:
        raise argparse.ArgumentTypeError(f"{pool} holds no address to allocate (at most /30)")
    if pool.overlaps(LINK_BLOCK):
        raise argparse.ArgumentTypeError(f"{pool} overlaps {LINK_BLOCK}, lamina's own links")
    return pool


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lamina", description="A self-hosted AWS Lambda for Linux.")
    parser.add_argument("--version", action="version", version=f"lamina {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    server = sub.add_parser("server", help="run the lamina server (AWS APIs on one port)")
    server.add_argument(
        "--host",
        default=os.environ.get("LAMINA_HOST", "127.0.0.1"),
        help="address to bind (env LAMINA_HOST; default 127.0.0.1)",
    )
    server.add_argument(
        "--port",
        type=int,
        default=_env_int("LAMINA_PORT", 4566),
        help="port to bind, 0 for any free port (env LAMINA_PORT; default 4566)",
    )
    server.add_argument(
        "--data-dir",
        default=os.environ.get("LAMINA_DATA_DIR"),
        help="state directory (env LAMINA_DATA_DIR; default /var/lib/lamina as root, "
        "else ~/.local/share/lamina)",
    )
    server.add_argument(
        "--accounts",
        default=os.environ.get("LAMINA_ACCOUNTS"),
        help="JSON accounts file (env LAMINA_ACCOUNTS; default: account 000000000000 "
        "with access key 'test' and secret 'test')",
    )
    server.add_argument(
        "--runtimes-dir",
        default=os.environ.get("LAMINA_RUNTIMES_DIR"),
        help="installed language runtimes (env LAMINA_RUNTIMES_DIR; default: lamina-runtimes in the "
        "Python environment lamina runs from, filled by make setup)",
    )
    server.add_argument(
        "--max-environments",
        type=int,
        default=_env_int("LAMINA_MAX_ENVIRONMENTS", 32),
        help="most execution environments at once (env LAMINA_MAX_ENVIRONMENTS; default 32)",
    )
    server.add_argument(
        "--idle-timeout",
        type=float,
        default=float(os.environ.get("LAMINA_IDLE_TIMEOUT", "600")),
        help="seconds before an idle execution environment is reclaimed (env LAMINA_IDLE_TIMEOUT; default 600)",
    )
    server.add_argument(
        "--event-retry-delay",
        type=float,
        default=float(os.environ.get("LAMINA_EVENT_RETRY_DELAY", "60")),
        help="seconds before the first retry of a failed Event invocation; the second waits twice that "
        "(env LAMINA_EVENT_RETRY_DELAY; default 60)",
    )
    server.add_argument(
        "--eni-release-delay",
        type=float,
        default=float(os.environ.get("LAMINA_ENI_RELEASE_DELAY", "30")),
        help="seconds before a Hyperplane network interface no function uses is deleted "
        "(env LAMINA_ENI_RELEASE_DELAY; default 30; 0 = at once)",
    )
    server.add_argument(
        "--vpc-idle-reclaim",
        type=float,
        default=float(os.environ.get("LAMINA_VPC_IDLE_RECLAIM", str(14 * 24 * 3600))),
        help="seconds without invocations after which a VPC function loses its interfaces and goes Inactive "
        "(env LAMINA_VPC_IDLE_RECLAIM; default 14 days)",
    )
    server.add_argument(
        "--uplink",
        type=_uplink,
        default=os.environ.get("LAMINA_UPLINK", "host"),
        help="the internet for NAT gateways, internet gateways and functions without a VPC: host (the "
        "host's network; lamina adds one link and its own nftables table there), netns:NAME (a namespace "
        "made with ip netns add NAME standing for the internet, as in tests) or none (no way out) "
        "(env LAMINA_UPLINK; default host)",
    )
    server.add_argument(
        "--public-ip-pool",
        type=_public_ip_pool,
        default=os.environ.get("LAMINA_PUBLIC_IP_POOL", "203.0.113.0/24"),
        help="IPv4 block Elastic IPs are allocated from (env LAMINA_PUBLIC_IP_POOL; default 203.0.113.0/24)",
    )
    server.add_argument(
        "--log-level",
        default=os.environ.get("LAMINA_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
    )
    logs = sub.add_parser("logs", help="print a function's logs (START/END/REPORT lines and its output)")
    logs.add_argument("function", help="function name")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new log lines")
    logs.add_argument(
        "--region", default=os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    )
    logs.add_argument("--account", default="000000000000", help="account id (default 000000000000)")
    logs.add_argument(
        "--data-dir", default=os.environ.get("LAMINA_DATA_DIR"), help="the server's data directory"
    )
    from lamina.cli import vpc

    vpc.add_parser(sub)
    from lamina.cli import layer

    layer.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "server":
        return serve(args)
    if args.command == "logs":
        return show_logs(args)
    if args.command == "vpc":
        from lamina.cli import vpc

        return vpc.main(args)
    if args.command == "layer":
        from lamina.cli import layer

        return layer.main(args)
    return 2


def show_logs(args: argparse.Namespace) -> int:
    """Print every log stream of a function, oldest first; with --follow, keep printing."""
    import time

    from lamina.runtime.logs import LogStore

    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    store = LogStore(data_dir / "logs")
    offsets: dict[Path, int] = {}
    out = sys.stdout.buffer
    while True:
        for name, path in store.streams(args.account, args.region, args.function):
            with open(path, "rb") as f:
                start = offsets.get(path, 0)
                if start == 0 and not args.follow:
                    out.write(f"== {name}\n".encode())
                f.seek(start)
                data = f.read()
                offsets[path] = start + len(data)
            out.write(data)
        out.flush()
        if not args.follow:
            if not offsets:
                print(
                    f"lamina: no logs for function {args.function} in {args.account}/{args.region}",
                    file=sys.stderr,
                )
                return 1
            return 0
        try:
            time.sleep(0.5)
        except KeyboardInterrupt:
            return 0


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises SIGTERM/SIGINT after a graceful shutdown; lamina exits 0 instead."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            captured = getattr(self, "_captured_signals", None)
            if isinstance(captured, list):
                captured.clear()

    return Server


def serve(args: argparse.Namespace) -> int:
    accounts = load_accounts(args.accounts)
    if not is_loopback(args.host) and uses_default_credentials(accounts):
        print(
            f"lamina: refusing to listen on {args.host}: the default credentials (access key 'test', secret "
            "'test') would let anyone on the network in. Give --accounts FILE with your own keys, or bind "
            "127.0.0.1.",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    if str(args.uplink).startswith("netns:") and not args.uplink.path.exists():
        print(
            f"lamina: --uplink {args.uplink}: there is no network namespace {args.uplink.path} "
            f"(make it with: ip netns add {args.uplink.name})",
            file=sys.stderr,
        )
        return 2

    import uvicorn

    from lamina.server import build_app

    _Server = _server_class()

    try:
        runtimes_dir = Path(args.runtimes_dir) if args.runtimes_dir else Path(sys.prefix) / "lamina-runtimes"
        app = build_app(
            data_dir,
            accounts,
            runtimes_dir=runtimes_dir,
            max_environments=args.max_environments,
            idle_timeout_s=args.idle_timeout,
            endpoint_port=args.port,
            event_retry_delay_s=args.event_retry_delay,
            eni_release_delay_s=args.eni_release_delay,
            vpc_idle_reclaim_s=args.vpc_idle_reclaim,
            uplink=args.uplink,
            public_ip_pool=args.public_ip_pool,
        )
    except OSError as exc:
        print(f"lamina: cannot use data directory {data_dir}: {exc}", file=sys.stderr)
        return 1
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=args.log_level,
        timeout_keep_alive=60,
        server_header=False,
    )
    server = _Server(config)
    logging.getLogger("lamina").info(
        "lamina %s: data in %s, accounts: %s",
        __version__,
        data_dir,
        ", ".join(a.account_id for a in accounts),
    )
    from lamina.services.lambda_.invoke import why_functions_cannot_run

    reason = why_functions_cannot_run()
    if reason is not None:
        logging.getLogger("lamina").warning("%s", reason)
    server.run()  # uvicorn handles SIGINT/SIGTERM: stops accepting, finishes requests, then lifespan shutdown
    app.platform.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

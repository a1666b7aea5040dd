"""``lamina`` command line: ``lamina server``, ``lamina logs``, ``lamina vpc``, ``lamina layer``,
``lamina runtime``."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator

from lamina import __version__
from lamina.domain.accounts import (
    DEFAULT_ACCOUNT,
    Account,
    AccountsError,
    is_loopback,
    parse_accounts,
    uses_default_credentials,
)
from lamina.runtime.host_ids import conflicts
from lamina.settings import Settings, SettingsError


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lamina", description="A self-hosted AWS Lambda for Linux.")
    parser.add_argument("--version", action="version", version=f"lamina {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    server = sub.add_parser(
        "server",
        help="run the lamina server (AWS APIs on one port)",
        description="Run the lamina server. Each option may also be set by its environment variable; "
        "a flag wins over the variable.",
    )
    Settings.add_arguments(server)
    server.add_argument(
        "--no-zygotes", dest="zygotes", action="store_const", const=False, help="the same as --zygotes off"
    )
    from lamina.cli import logs

    logs.add_parser(sub)
    from lamina.cli import vpc

    vpc.add_parser(sub)
    from lamina.cli import layer

    layer.add_parser(sub)
    from lamina.cli import runtime

    runtime.add_parser(sub)
    from lamina.cli import node

    node.add_parser(sub)
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
    if args.command == "runtime":
        from lamina.cli import runtime

        return runtime.main(args)
    if args.command == "node":
        from lamina.cli import node

        return node.main(args)
    return 2


def show_logs(args: argparse.Namespace) -> int:
    """``lamina logs``: a client of the Lambda and CloudWatch Logs APIs (see ``cli/logs.py``)."""
    from lamina.cli import logs

    return logs.main(args)


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """Graceful shutdown on SIGINT/SIGTERM, then a normal return: uvicorn's own signal capture
        re-raises the signal after shutting down, which would end lamina with the signal's status."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server


def tls_files(settings: Settings) -> tuple[str, str] | None:
    """The certificate and key files of ``--tls-cert``/``--tls-key`` (None: plain HTTP); ValueError
    says why they cannot be used. The pair is loaded once here, so a wrong file stops the server
    with its reason instead of failing every handshake."""
    if settings.tls_cert is None and settings.tls_key is None:
        return None
    if settings.tls_cert is None or settings.tls_key is None:
        raise ValueError("--tls-cert and --tls-key go together: give both (or neither, for plain HTTP)")
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            settings.tls_cert, settings.tls_key
        )
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"cannot use --tls-cert {settings.tls_cert} with --tls-key {settings.tls_key}: {exc}"
        ) from None
    return str(settings.tls_cert), str(settings.tls_key)


def serve(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_sources(args)
    except SettingsError as exc:
        print(f"lamina: {exc}", file=sys.stderr)
        return 2
    accounts = load_accounts(str(settings.accounts_file) if settings.accounts_file else None)
    settings = dataclasses.replace(settings, accounts=accounts)
    if not is_loopback(settings.host) and uses_default_credentials(accounts):
        print(
            f"lamina: refusing to listen on {settings.host}: the default credentials (access key 'test', secret "
            "'test') would let anyone on the network in. Give --accounts FILE with your own keys, or bind "
            "127.0.0.1.",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uplink = settings.uplink
    if str(uplink).startswith("netns:") and not uplink.path.exists():
        print(
            f"lamina: --uplink {uplink}: there is no network namespace {uplink.path} "
            f"(make it with: ip netns add {uplink.name})",
            file=sys.stderr,
        )
        return 2

    if settings.blob_store is None and (settings.blob_endpoint or settings.blob_region):
        print(
            "lamina: --blob-endpoint and --blob-region need --blob-store s3://BUCKET[/PREFIX]",
            file=sys.stderr,
        )
        return 2
    try:
        tls = tls_files(settings)
    except ValueError as exc:
        print(f"lamina: {exc}", file=sys.stderr)
        return 2

    taken = conflicts(settings.uid_range)
    if taken:
        print(
            f"lamina: --uid-range {settings.uid_range} holds ids of this host's users, groups or "
            f"subordinate id ranges, which functions must never run as: {', '.join(taken[:5])}. "
            "Choose another range.",
            file=sys.stderr,
        )
        return 2

    import uvicorn

    from lamina.api.edge import EdgeLimits, protocol_class
    from lamina.builder.elfcheck import check_for_runtimes
    from lamina.server import build
    from lamina.services.lambda_.invoke import why_functions_cannot_run
    from lamina.store import DatabaseError

    try:
        server = build(settings, zip_checker=check_for_runtimes)
    except DatabaseError as exc:
        print(f"lamina: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"lamina: cannot use data directory {settings.data_dir}: {exc}", file=sys.stderr)
        return 1
    config = uvicorn.Config(
        server.app,
        host=settings.host,
        port=settings.port,
        # httptools, with bounded request heads, a head timeout and lingering close (api/edge.py).
        http=protocol_class(EdgeLimits(header_timeout_s=settings.header_timeout_s)),
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        timeout_keep_alive=60,
        server_header=False,
        # The client's address is the socket's: uvicorn would otherwise take X-Forwarded-For from
        # any loopback client (functions reach the API through a loopback relay), letting a caller
        # choose its own aws:SourceIp.
        proxy_headers=False,
        # --tls-cert/--tls-key: HTTPS on the same port instead of HTTP.
        ssl_certfile=tls[0] if tls is not None else None,
        ssl_keyfile=tls[1] if tls is not None else None,
    )
    logging.getLogger("lamina").info(
        "lamina %s: data in %s, accounts: %s",
        __version__,
        settings.data_dir,
        ", ".join(a.account_id for a in accounts),
    )
    reason = why_functions_cannot_run()
    if reason is not None:
        logging.getLogger("lamina").warning("%s", reason)
    # uvicorn handles SIGINT/SIGTERM: stops accepting, finishes requests, then the lifespan's shutdown
    # stops every worker (the supervisor) and closes the store.
    _server_class()(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

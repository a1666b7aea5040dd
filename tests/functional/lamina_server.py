"""Run a real ``lamina server`` subprocess on a free loopback port, for tests and benchmarks."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Accounts the functional tests use: the default one plus two more for cross-account cases.
ACCOUNTS = [
    {"account_id": "000000000000", "access_key_id": "test", "secret_access_key": "test"},
    {"account_id": "111111111111", "access_key_id": "AKIDALICE111", "secret_access_key": "alice-secret"},
    {"account_id": "222222222222", "access_key_id": "AKIDBOB22222", "secret_access_key": "bob-secret"},
]

# The on-demand Init limit (``--test-init-timeout``) of the servers of tests that wait for an Init
# to time out, in place of AWS's 10 s.
QUICK_INIT_TIMEOUT_S = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http_ok(
    proc: subprocess.Popen[bytes],
    url: str,
    what: str,
    log: Callable[[], str],
    timeout: float,
    context: ssl.SSLContext | None = None,
) -> None:
    """Poll ``url`` until it answers 200; a ``proc`` that exits first, or a timeout, raises with its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log()}")
        try:
            with urllib.request.urlopen(url, timeout=1, context=context) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready: {log()}")


def stop_process(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM to ``proc`` (by its own pid), SIGKILL if it has not ended within 15 s; its status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return int(proc.returncode)


class LaminaServer:
    """A ``lamina server`` process; ``stop()`` ends it by its own pid."""

    # The certificate clients verify an HTTPS server with (None: plain HTTP). A class default too:
    # tests that adopt a process they started themselves (``__new__``) get plain HTTP.
    ca: Path | None = None
    # The --database it was given (None: the data directory's SQLite file).
    database: str | None = None

    def __init__(
        self,
        data_dir: Path,
        *,
        accounts: list[dict[str, str]] | None = None,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
        lambda_role: bool = True,
        env: dict[str, str] | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        """``env``: variables added to the server's environment (a benchmark runs another tree's
        code with ``PYTHONPATH``); ``tls``: (certificate, key) to serve HTTPS with, the certificate
        being its own CA (:attr:`ca`: what clients verify it with)."""
        self.data_dir = data_dir
        self.ca: Path | None = tls[0] if tls is not None else None
        self.port = port or free_port()
        self.accounts_file: Path | None = None
        if "--database" in extra_args:
            self.database = extra_args[extra_args.index("--database") + 1]
        data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            "-m",
            "lamina.cli.main",
            "server",
            "--port",
            str(self.port),
            "--data-dir",
            str(data_dir),
            "--log-level",
            "warning",
            *extra_args,
        ]
        if tls is not None:
            args += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        if accounts is not None:
            self.accounts_file = data_dir.parent / f"accounts-{self.port}.json"
            self.accounts_file.write_text(json.dumps({"accounts": accounts}))
            args += ["--accounts", str(self.accounts_file)]
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        # Tests never use the host's network as the uplink (``lamina server`` defaults to it): a
        # test that needs a way out passes ``--uplink netns:NAME``, which wins over the variable.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "LAMINA_UPLINK": "none", **(env or {})}
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.wait_ready()
        if lambda_role:
            for account in accounts or [{"access_key_id": "test", "secret_access_key": "test"}]:
                create_lambda_role(self, account["access_key_id"], account["secret_access_key"])

    @property
    def url(self) -> str:
        return f"{'https' if self.ca is not None else 'http'}://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 20.0) -> None:
        context = None if self.ca is None else ssl.create_default_context(cafile=str(self.ca))
        wait_http_ok(self.proc, f"{self.url}/_lamina/health", "lamina server", self.log, timeout, context)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL: the crash case."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self) -> int:
        rc = stop_process(self.proc)
        self._log.close()
        return rc


def client(
    server: LaminaServer | str,
    service: str = "lambda",
    *,
    key: str = "test",
    secret: str = "test",
    region: str = "us-east-1",
    token: str | None = None,
    **config: Any,
) -> Any:
    """A boto3 client of ``server`` (or of an endpoint URL: benchmarks point it at moto too) that
    never retries, signed with ``key``/``secret`` (and a session ``token`` for temporary
    credentials); ``config`` adds botocore Config options."""
    import boto3
    from botocore.config import Config

    ca = None if isinstance(server, str) else getattr(server, "ca", None)
    return boto3.client(
        service,
        endpoint_url=server if isinstance(server, str) else server.url,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(retries={"total_max_attempts": 1}, **config),
        verify=str(ca) if ca is not None else None,
    )


def run_aws(
    server: LaminaServer,
    *args: str,
    key: str = "test",
    secret: str = "test",
    region: str = "us-east-1",
    cwd: Path | None = None,
    token: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real AWS CLI against the server (``token``: a session token for temporary keys)."""
    aws = Path(sys.executable).parent / "aws"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": region,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_PAGER": "",
        "AWS_MAX_ATTEMPTS": "1",
    }
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_SESSION_TOKEN", None)
    if token is not None:
        env["AWS_SESSION_TOKEN"] = token
    ca = getattr(server, "ca", None)
    tls = ["--ca-bundle", str(ca)] if ca is not None else []
    return subprocess.run(
        [str(aws), *args, "--endpoint-url", server.url, *tls],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def create_lambda_role(server: LaminaServer, key: str, secret: str, name: str = "lambda-role") -> str:
    """An execution role Lambda may assume, with AWSLambdaBasicExecutionRole (as a new user makes one)."""
    iam = client(server, "iam", key=key, secret=secret)
    try:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    iam.attach_role_policy(
        RoleName=name, PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    )
    return str(arn)


DELIVERIES = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["lambda:InvokeFunction", "sqs:SendMessage", "sns:Publish", "events:PutEvents"],
                "Resource": "*",
            }
        ],
    }
)


def allow_deliveries(
    server: LaminaServer, name: str = "lambda-role", *, key: str = "test", secret: str = "test"
) -> None:
    """Let the execution role ``name`` deliver to destinations (Lambda, SQS, SNS, EventBridge), as
    AWS requires of it before it accepts a DestinationConfig."""
    iam = client(server, "iam", key=key, secret=secret)
    iam.put_role_policy(RoleName=name, PolicyName="deliveries", PolicyDocument=DELIVERIES)


class InProcessServer:
    """A lamina server assembled in this process by the composition root (``lamina.server.build``)
    and served by uvicorn on a free loopback port in a thread: for tests that hand the server a
    part of their own (an authorizer). ``stop()`` runs the lifespan's shutdown and joins the thread."""

    def __init__(self, data_dir: Path, **build_args: Any) -> None:
        import dataclasses
        import threading

        import uvicorn

        from lamina.domain.accounts import Account
        from lamina.net.uplink import UplinkKind, UplinkSpec
        from lamina.server import build
        from lamina.settings import Settings

        self.port = free_port()
        accounts = tuple(Account(**a) for a in ACCOUNTS)
        self.settings = dataclasses.replace(
            Settings(),
            port=self.port,
            data_dir=data_dir,
            accounts=accounts,
            uplink=UplinkSpec(UplinkKind.NONE),
        )
        self.built = build(self.settings, **build_args)
        config = uvicorn.Config(
            self.built.app, host="127.0.0.1", port=self.port, lifespan="on", log_level="warning"
        )
        self._uvicorn = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._uvicorn.run, name="test-uvicorn")
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the in-process lamina server did not start")
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._uvicorn.should_exit = True
        self._thread.join(30)


def user_session(
    server: LaminaServer | InProcessServer, user: str = "dev", key: str = "test", secret: str = "test"
) -> dict[str, str]:
    """Temporary credentials of IAM user ``user`` (GetSessionToken: they act as the user,
    ``arn:aws:iam::ACCOUNT:user/NAME``) of the account whose root keys are ``key``/``secret``; the
    user is created with AdministratorAccess if absent. The account root may not assume roles:
    tests that assume roles do it as such a user, as people do in AWS."""
    iam = client(server.url, "iam", key=key, secret=secret)
    try:
        iam.create_user(UserName=user)
        iam.attach_user_policy(UserName=user, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    made = iam.create_access_key(UserName=user)["AccessKey"]
    sts = client(server.url, "sts", key=made["AccessKeyId"], secret=made["SecretAccessKey"])
    creds = sts.get_session_token()["Credentials"]
    iam.delete_access_key(UserName=user, AccessKeyId=made["AccessKeyId"])  # at most 2 keys per user
    return {k: str(creds[k]) for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}


def session_client(server: LaminaServer | InProcessServer, service: str, creds: dict[str, Any]) -> Any:
    """A boto3 client signing with temporary credentials (an AssumeRole answer's ``Credentials``)."""
    return client(
        server.url,
        service,
        key=creds["AccessKeyId"],
        secret=creds["SecretAccessKey"],
        token=creds["SessionToken"],
    )

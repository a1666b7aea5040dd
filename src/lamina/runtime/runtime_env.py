"""What a function's runtime is started with: its command line and its environment variables.

The variables are the ones Lambda defines for every function ("Defined runtime environment
variables" in AWS's Lambda guide), then the function's own ``Environment.Variables``, which win
over all but the native gate's (the bootstrap takes that one out before user code runs).
"""

from __future__ import annotations

import re

from lamina.domain.functions import runtime_version_arn
from lamina.runtime import native_gate, wrapper
from lamina.runtime.public_api import ApiAccess
from lamina.runtime.target import Target

__all__ = ["BASE_ENVIRONMENT", "RUNTIME_API", "runtime_argv", "runtime_environment", "runtime_version"]

RUNTIME_API = "127.0.0.1:9001"
# lamina's build of every managed runtime: the ``vN`` of AWS's runtime version names.
RUNTIME_BUILD = 1


# The variables every runtime starts with before the function's: the first ones it sees.
BASE_ENVIRONMENT = {
    "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
    "LANG": "en_US.UTF-8",
    "TZ": ":UTC",
}


def runtime_version(target: Target) -> tuple[str, str] | None:
    """The runtime version a cold start's ``INIT_START`` line and ``platform.initStart`` name, as
    AWS names them: ``("python:3.12.v1", <the function's RuntimeVersionArn>)``; ``provided.al2023``
    is ``provided:al2023.v1``. None for a function without a managed runtime (a container image)."""
    runtime = str(target.config.get("Runtime") or "")
    if not runtime:
        return None
    family = re.fullmatch(r"([a-z]+)(\d[\w.]*)", runtime)  # python3.12, nodejs20.x, java21
    if family is not None:
        name = f"{family[1]}:{family[2]}"
    elif "." in runtime:
        name = runtime.replace(".", ":", 1)  # provided.al2023
    else:
        name = f"{runtime}:al1"  # provided (Amazon Linux 1)
    arn = (target.config.get("RuntimeVersionConfig") or {}).get("RuntimeVersionArn")
    return f"{name}.v{RUNTIME_BUILD}", str(arn or runtime_version_arn(target.region, runtime))


def runtime_environment(
    target: Target,
    *,
    log_group: str,
    log_stream: str,
    initialization_type: str,
    public_api: ApiAccess | None,
) -> dict[str, str]:
    """The runtime's environment. ``public_api``: how the function reaches lamina at its public
    addresses (it has a data plane), or None: through the in-sandbox relay on the endpoint port."""
    t, cfg = target, target.config
    logging_config = cfg.get("LoggingConfig") or {}
    env = {
        **BASE_ENVIRONMENT,
        "_HANDLER": str(cfg.get("Handler", "")),
        "AWS_LAMBDA_FUNCTION_NAME": t.name,
        "AWS_LAMBDA_FUNCTION_VERSION": t.version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(cfg.get("MemorySize", 128)),
        "AWS_LAMBDA_LOG_GROUP_NAME": log_group,
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type,
        "AWS_LAMBDA_RUNTIME_API": RUNTIME_API,
        "AWS_REGION": t.region,
        "AWS_DEFAULT_REGION": t.region,
        "AWS_ACCESS_KEY_ID": t.credentials[0],
        "AWS_SECRET_ACCESS_KEY": t.credentials[1],
        "AWS_SESSION_TOKEN": t.credentials[2],
        **(
            public_api.env(t.region)
            if public_api is not None
            else {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{t.endpoint_port}"}
        ),
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
    }
    runtime = str(cfg.get("Runtime", ""))
    if runtime.startswith("python"):  # on the host's interpreter or the image's
        env["AWS_EXECUTION_ENV"] = f"AWS_Lambda_{runtime}"
    if logging_config.get("LogFormat") == "JSON":
        # What AWS's runtimes read to log as JSON records, at the function's application level.
        env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        env["AWS_LAMBDA_LOG_LEVEL"] = str(logging_config.get("ApplicationLogLevel", "INFO"))
    user = (cfg.get("Environment") or {}).get("Variables") or {}
    merged = {**env, **user}
    if t.native_gate is not None:
        merged[native_gate.ENV_VAR] = t.native_gate  # the bootstrap takes it out before user code
    return merged


def runtime_argv(target: Target) -> tuple[str, ...] | None:
    """The runtime's command line, or None: no bootstrap to run (a custom runtime without one)."""
    t = target
    if t.userland is not None and (t.userland / "var/runtime/bootstrap").is_file():
        # The image's own: AWS's runtime client and bootstrap, which applies AWS_LAMBDA_EXEC_WRAPPER.
        return ("/var/runtime/bootstrap",)
    if t.python is not None:
        argv: tuple[str, ...] = (f"/var/lang/{t.python.executable}", "/var/runtime/bootstrap.py")
    # Custom runtime: /var/task/bootstrap, then /opt/bootstrap (later layers win).
    elif (t.code_dir / "bootstrap").is_file():
        argv = ("/var/task/bootstrap",)
    elif any((d / "bootstrap").is_file() for d in t.layer_dirs):
        argv = ("/opt/bootstrap",)
    else:
        return None
    return wrapper.wrapped(argv, (t.config.get("Environment") or {}).get("Variables") or {})

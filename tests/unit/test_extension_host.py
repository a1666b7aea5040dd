"""The extension lifecycle's pure parts: AWS's wording of an extension's end, the Shutdown limits,
and the waits re-checked on each change."""

from __future__ import annotations

import asyncio

import pytest

from lamina.runtime.extension_host import ExtensionHost, extension_exit_text, shutdown_limit_s
from lamina.runtime.extensions_api import ExtensionsApi, ExtensionState, FunctionMetadata
from lamina.runtime.init_events import ExtensionExited, ExtensionLaunchFailed

META = FunctionMetadata("f", "$LATEST", "app.handler", "000000000000")


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (0, "exit code 0"),
        (3, "exit status 3"),
        (-9, "signal: killed"),
        (-15, "signal: term"),
        (None, "signal: killed"),
    ],
)
def test_exit_text(code: int | None, text: str) -> None:
    assert extension_exit_text(code) == text


@pytest.mark.parametrize(
    ("external", "internal", "limit"), [(0, 0, 0.0), (0, 2, 0.5), (1, 0, 2.0), (1, 3, 2.0)]
)
def test_shutdown_limits(external: int, internal: int, limit: float) -> None:
    assert shutdown_limit_s(external, internal) == limit


def test_the_first_failure_wins_and_wakes_the_waits() -> None:
    async def main() -> None:
        host = ExtensionHost(ExtensionsApi(META, ("a", "b")))
        registered = host.when(host.registered_or_failed)
        assert not registered.done()
        host.on_events(
            [
                ExtensionLaunchFailed(
                    0, "a", "/opt/extensions/a", 13, "fork/exec /opt/extensions/a: permission denied"
                )
            ]
        )
        host.on_events([ExtensionExited(1, "b", "/opt/extensions/b", 3)])
        assert registered.done()
        assert host.failure == ("Extension.LaunchError", "fork/exec /opt/extensions/a: permission denied")
        assert [e.state for e in host.api.extensions] == [ExtensionState.LAUNCH_ERROR, ExtensionState.EXITED]
        assert (
            host.log_lines()[0]
            == "EXTENSION\tName: a\tState: LaunchError\tEvents: []\tError Type: PermissionDenied"
        )

    asyncio.run(main())


def test_exits_during_shutdown_are_not_failures() -> None:
    async def main() -> None:
        host = ExtensionHost(ExtensionsApi(META, ("a",)))
        gone = host.when(host.externals_gone)
        host.shutting_down = True
        host.on_events([ExtensionExited(0, "a", "/opt/extensions/a", 0)])
        assert gone.done() and host.failure is None

    asyncio.run(main())


@pytest.mark.parametrize(
    ("internal", "limit", "share"), [(False, 2.0, 0.3), (True, 2.0, 0.5), (True, 0.5, 0.5), (False, 0.1, 0.1)]
)
def test_the_runtime_share_of_the_shutdown(internal: bool, limit: float, share: float) -> None:
    """AWS: the runtime has up to 300 ms (500 ms with an internal extension) of the phase."""
    host = ExtensionHost(ExtensionsApi(META, ("a",)))
    if internal:
        host.api.register("inside", None, b'{"events":["INVOKE"]}')
        assert [e.name for e in host.api.registered()] == ["inside"]
    assert host.runtime_share_s(limit) == share

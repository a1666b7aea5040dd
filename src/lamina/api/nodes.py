"""The node-to-node endpoint: invocations other lamina nodes forward here (docs/nodes.md).

``POST /_lamina-node/invoke`` with a body another node signed with the cluster secret (HMAC,
bound to this node's name, the path, a time and a nonce: services/cluster.py). Nothing here is
authorized again: the sending node ran the whole pipeline (authentication, IAM) before it
forwarded the invocation, and only a holder of the cluster secret can make one. Any other request
is refused, the same way whatever was wrong with it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import Executor

from lamina.api.http import Request, Response
from lamina.domain.nodes import SIGNATURE_HEADER, NodeError, body_digest
from lamina.errors import AwsError, TooManyRequestsException
from lamina.services.cluster import FORWARD_PATH, Cluster
from lamina.services.lambda_.invoke import forwarded_target, run_forwarded
from lamina.services.platform import Platform
from lamina.services.vpc_nodes import HOST_PATH, RELEASE_PATH, Refused

log = logging.getLogger("lamina.nodes")


def _refuse(status: int, message: str) -> Response:
    body = json.dumps({"message": message}).encode()
    return Response(status, [("Content-Type", "application/json")], body)


class NodeEndpoint:
    """Mounted at ``/_lamina-node`` (no bucket name can start with ``_``)."""

    prefix = "/_lamina-node"
    max_body = 9 * 1024 * 1024  # a 6 MB payload, base64 in JSON

    def __init__(self, cluster: Cluster, platform: Platform, executor: Executor) -> None:
        self._cluster = cluster
        self._platform = platform
        self._executor = executor

    def streams(self, request: Request) -> bool:
        return False

    async def handle(self, request: Request, body: bytes | None) -> Response:
        if request.method == "POST" and request.raw_path in (HOST_PATH, RELEASE_PATH):
            return await self._overlay(request, body)
        if request.raw_path != FORWARD_PATH or request.method != "POST":
            return _refuse(404, "Not found.")
        if body is None:
            return _refuse(413, "Too large.")
        loop = asyncio.get_running_loop()
        # Hashing a body of up to 9 MB takes milliseconds: off the loop, which anyone may send one to.
        digest = await loop.run_in_executor(self._executor, body_digest, body)
        try:
            call = self._cluster.accept(
                request.headers.get(SIGNATURE_HEADER, ""), request.raw_path, body, digest
            )
        except NodeError as exc:
            log.warning("refused a node-to-node request from %s: %s", request.client_host, exc)
            return _refuse(403, "Forbidden.")
        try:
            target = await loop.run_in_executor(self._executor, forwarded_target, self._platform, call)
            result = await run_forwarded(self._platform, call, target)
        except TooManyRequestsException:
            return _refuse(429, "Rate Exceeded.")
        except AwsError as exc:
            return _refuse(exc.status if exc.status >= 400 else 500, exc.message)
        except ValueError as exc:  # a version that is no number: a node's bug, said so
            return _refuse(400, f"Bad invocation: {exc}")
        answer = result.encode()
        signature = self._cluster.sign_answer(request.headers.get(SIGNATURE_HEADER, ""), answer)
        return Response(200, [("Content-Type", "application/json"), (SIGNATURE_HEADER, signature)], answer)

    async def _overlay(self, request: Request, body: bytes | None) -> Response:
        """A link for another node's environment into an interface homed here, or its release
        (services/vpc_nodes.py): signed as forwarded invocations are, then checked there; the
        answer signed as theirs are."""
        if body is None:
            return _refuse(413, "Too large.")
        loop = asyncio.get_running_loop()
        digest = await loop.run_in_executor(self._executor, body_digest, body)
        try:
            self._cluster.verify(request.headers.get(SIGNATURE_HEADER, ""), request.raw_path, body, digest)
        except NodeError as exc:
            log.warning("refused a node-to-node request from %s: %s", request.client_host, exc)
            return _refuse(403, "Forbidden.")
        nodes = self._platform.vpc_nodes
        if nodes is None:
            return _refuse(409, "This node has no VPC overlay.")
        work = nodes.host if request.raw_path == HOST_PATH else nodes.release
        try:
            answer = await loop.run_in_executor(self._executor, work, body)
        except Refused as exc:
            log.warning("refused an overlay request: %s", exc)
            return _refuse(exc.status, str(exc))
        signature = self._cluster.sign_answer(request.headers.get(SIGNATURE_HEADER, ""), answer)
        return Response(200, [("Content-Type", "application/json"), (SIGNATURE_HEADER, signature)], answer)

"""``POST /_lamina/vpc-run``: lamina's own route for ``lamina vpc run`` (not an AWS API).

``lamina vpc run`` creates its interface with CreateNetworkInterface like any client; then, through
this route, it says that a process now uses it (``Attach``: the interface shows ``in-use``, with a
``RequesterId`` and an attachment shaped as a Lambda Hyperplane interface's), learns where the server
publishes interfaces' namespaces, and says when it is done (``Detach``: ``available`` again, so it
can be deleted). ``Where`` only answers where the namespaces are published. ``Join``, asked
before the CLI waits for the namespace: on a node that is not the VPC's home, the server joins a
namespace of its own to the interface at home and publishes it as the interface's (answer
``Joined``: the link and address to watch there; null when the VPC is homed here); ``Detach``
undoes it.

The request is a JSON object, SigV4-signed for the service ``ec2`` in its ``Region``:
``{"Action": "Join" | "Attach" | "Detach" | "Where", "Region": "...", "NetworkInterfaceId": "eni-..."}``.
The answer is ``{"NetnsDir": ..., "NetworkInterface": {...}}`` (``NetnsDir`` null when the server
has no VPC data plane; ``Attach`` adds ``ResolvConf``, the ``/etc/resolv.conf`` the interface's VPC
hands out -- its DHCP option set's servers and domain -- for the command to run with), or ``{"Error": {"Code": ..., "Message": ...}}`` with EC2's code and status.

Who may: attaching and detaching an interface is authorized as ``ec2:DeleteNetworkInterface`` on it
(whoever may delete the interface may say a process of theirs uses it); ``Where`` as
``ec2:DescribeNetworkInterfaces``. Another account's interface does not exist. Only a customer's
own interface (``InterfaceType: interface``, not requester-managed) can be attached.

The trust boundary: ``NetnsDir`` is a path on the server's host. The server tells it only to a
caller on its own host (a loopback source, or an address the host holds: ``local``); anyone else
gets ``null`` (nothing about the host's file system leaves it). The CLI uses it only when the
server is on its own host (a loopback or local address) and only as a directory of namespace files
(it opens nothing there that is not one): a remote server cannot make it open arbitrary paths.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lamina.domain import ec2 as E
from lamina.domain.ec2_models import NetworkInterface
from lamina.errors import AwsError
from lamina.services.base import AuthorizationRequest, Principal
from lamina.store.ec2 import Ec2Store

log = logging.getLogger("lamina.vpc_run")

PATH = "/_lamina/vpc-run"
MAX_BODY = 4096
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_ENI = re.compile(r"eni-[0-9a-f]{8,17}")
_ACTIONS = ("Join", "Attach", "Detach", "Where")
# What a process using a customer's interface attaches as: the shape of a Lambda Hyperplane
# interface's attachment (a service's, not an instance's).
ATTACHMENT_OWNER = "amazon-aws"


def _loopback(source: str) -> bool:
    try:
        return ipaddress.ip_address(source).is_loopback
    except ValueError:
        return False


def _customer(eni: NetworkInterface, eni_id: str) -> None:
    if eni.get("RequesterManaged") or eni.get("InterfaceType", "interface") != "interface":
        raise AwsError(
            f"Interface: [{eni_id}] is not a customer's interface.",
            code="InvalidNetworkInterface.InUse",
            status=400,
            sender_fault=True,
        )


def _bad(message: str) -> AwsError:
    return AwsError(message, code="InvalidParameterValue", status=400, sender_fault=True)


class VpcRunFront:
    """Serves :data:`PATH` (call :meth:`handle` off the event loop: it reads and writes the store)."""

    def __init__(
        self,
        store: Ec2Store,
        authorize: Callable[[AuthorizationRequest], None],
        netns_dir: Path | None,
        clock: Callable[[], float],
        resolv_conf: Callable[[str, str, str], str] | None = None,
        local: Callable[[str], bool] = lambda source: _loopback(source),
        join: Callable[[str, str, str, str], tuple[str, str] | None] | None = None,
        leave: Callable[[str], None] | None = None,
    ) -> None:
        """``resolv_conf(account, region, vpc_id)``: the VPC's ``/etc/resolv.conf`` (the data
        plane's, as functions get it); None without a data plane. ``local``: whether a source
        address is this host's (it may be told ``NetnsDir``). ``join(account, region, vpc_id,
        eni_id)``: on a node that is not the VPC's home, a namespace of this node's joined to the
        interface at home and published as its own (``services.vpc_nodes.VpcNodes.run_join``: the
        link and address it has there; None when the VPC is homed here); ``leave(eni_id)`` undoes
        it (at ``Detach``). None: a single node, every VPC homed here."""
        self._join = join
        self._leave = leave
        self._store = store
        self._local = local
        self._authorize = authorize
        self._netns_dir = netns_dir
        self._clock = clock
        self._resolv_conf = resolv_conf

    def handle(
        self, body: bytes, authenticate: Callable[[str], Principal], source_ip: str = ""
    ) -> dict[str, Any]:
        """The JSON answer to one request; raises :class:`AwsError` (the front end words it as
        EC2 does: ``UnauthorizedOperation``, ``AuthFailure``...)."""
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            raise _bad("The request is not a JSON object.") from None
        if not isinstance(doc, dict):
            raise _bad("The request is not a JSON object.")
        region = doc.get("Region")
        if not isinstance(region, str) or not _REGION.fullmatch(region):
            raise _bad("A Region is required.")
        principal = authenticate(region)  # the signature, scoped to ec2 in that Region
        action = doc.get("Action")
        if action not in _ACTIONS:
            raise _bad(f"Action must be one of {', '.join(_ACTIONS)}.")
        told = self._netns_dir is not None and self._local(source_ip)
        where = {"NetnsDir": str(self._netns_dir) if told else None}
        if action == "Where":
            self._authorize(
                AuthorizationRequest(principal, "ec2", "DescribeNetworkInterfaces", region, {}, source_ip)
            )
            return where
        eni_id = doc.get("NetworkInterfaceId")
        if not isinstance(eni_id, str) or not _ENI.fullmatch(eni_id):
            raise AwsError(
                f'Invalid id: "{eni_id}" (expecting "eni-...")',
                code="InvalidNetworkInterfaceID.Malformed",
                status=400,
                sender_fault=True,
            )
        self._authorize(
            AuthorizationRequest(
                principal, "ec2", "DeleteNetworkInterface", region, {"NetworkInterfaceId": eni_id}, source_ip
            )
        )
        if action == "Join":
            with self._store.transaction(principal.account_id, region) as tx:
                eni = tx.require(E.NETWORK_INTERFACE, eni_id)
                _customer(eni, eni_id)
            joined = None
            if self._join is not None and told:
                try:
                    link = self._join(principal.account_id, region, str(eni["VpcId"]), eni_id)
                except Exception as exc:  # the home refused or cannot be reached: said, nothing kept
                    log.warning("vpc run: cannot join %s at its VPC's home: %s", eni_id, exc)
                    raise AwsError(
                        f"Interface: [{eni_id}] cannot be reached from this node: {exc}",
                        code="ServiceUnavailable",
                        status=503,
                        sender_fault=False,
                    ) from None
                if link is not None:
                    joined = {"Link": link[0], "Address": link[1]}
            return {**where, "Joined": joined}
        attach = action == "Attach"
        with self._store.transaction(principal.account_id, region) as tx:
            eni = tx.require(E.NETWORK_INTERFACE, eni_id)
            _customer(eni, eni_id)
            in_use = eni.get("Status") == "in-use"
            if attach and in_use:
                raise AwsError(
                    f"Interface: [{eni_id}] in use.",
                    code="InvalidNetworkInterface.InUse",
                    status=400,
                    sender_fault=True,
                )
            if attach:
                eni["Status"] = "in-use"
                eni["RequesterId"] = principal.account_id
                eni["Attachment"] = {
                    "AttachmentId": "ela-attach-" + os.urandom(9).hex()[:17],
                    "AttachTime": E.iso(tx.now_ms),
                    "DeleteOnTermination": False,
                    "DeviceIndex": 1,
                    "InstanceOwnerId": ATTACHMENT_OWNER,
                    "Status": "attached",
                }
            elif in_use:
                eni["Status"] = "available"
                eni.pop("RequesterId", None)
                eni.pop("Attachment", None)
            tx.update(eni_id, eni)
            shown = E.wire_copy(eni)
        if not attach and self._leave is not None:
            self._leave(eni_id)
        answer = {**where, "NetworkInterface": shown}
        if attach and self._resolv_conf is not None:
            answer["ResolvConf"] = self._resolv_conf(principal.account_id, region, str(eni["VpcId"]))
        return answer

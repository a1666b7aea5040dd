"""Lambda functions in a VPC: VpcConfig validation and Hyperplane network interfaces.

Facts from AWS (spec/vpc.md, recordings): VpcConfig is checked in this order -- patterns
(schema validation), both lists or neither, security groups before subnets (each reported as
the EC2 error Lambda got), one VPC, then the execution role's permission to create interfaces.
Interfaces are shared: one per (account, subnet, sorted security groups), created when the
first function needs that combination, deleted once no function uses it any more.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid

from lamina.domain.functions import FunctionRef, State
from lamina.domain.models import VpcConfig, VpcConfigResponse
from lamina.errors import AwsError, InvalidParameterValueException, LaminaError
from lamina.linux import affinity
from lamina.services.lambda_.roles import role_allows
from lamina.services.platform import Platform
from lamina.store.functions import FunctionRow
from lamina.store.hyperplane import HyperplaneStore, groups_key

log = logging.getLogger("lamina.vpc")

ENI_ACTIONS = ("ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface")

# StateReasonCode -> (Invoke's 502 exception, its message)
INVOKE_ERRORS = {
    "SubnetOutOfIPAddresses": (
        "SubnetIPAddressLimitReachedException",
        "Lambda was not able to set up VPC access for the Lambda function because one or more configured "
        "subnets has no available IP addresses.",
    ),
    "InvalidSubnet": (
        "InvalidSubnetIDException",
        "The subnet ID of the function's VPC configuration does not exist.",
    ),
    "InvalidSecurityGroup": (
        "InvalidSecurityGroupIDException",
        "The security group ID of the function's VPC configuration does not exist.",
    ),
    "EniLimitExceeded": (
        "ENILimitReachedException",
        "Lambda was not able to create an ENI in the VPC of the Lambda function because the limit for Network "
        "Interfaces has been reached.",
    ),
    "InsufficientRolePermissions": (
        "EC2AccessDeniedException",
        "Lambda was not able to set up VPC access for the Lambda function because the execution role does not "
        "have permissions to call CreateNetworkInterface on EC2.",
    ),
}


def empty_config() -> VpcConfigResponse:
    return {"SubnetIds": [], "SecurityGroupIds": [], "Ipv6AllowedForDualStack": False, "VpcId": ""}


def _ec2_error(operation: str, exc: AwsError) -> InvalidParameterValueException:
    return InvalidParameterValueException(
        f"Error occurred while {operation}. EC2 Error Code: {exc.code}. EC2 Error Message: {exc.message}"
    )


def role_may_manage_interfaces(platform: Platform, account: str, role_arn: str) -> bool:
    """Whether the execution role may create, describe and delete network interfaces."""
    return all(role_allows(platform.iam, account, role_arn, action, "*") for action in ENI_ACTIONS)


def check_vpc_config(
    platform: Platform, account: str, region: str, role_arn: str, vpc: VpcConfig | None
) -> VpcConfigResponse | None:
    """The VpcConfig response for a requested VpcConfig (None: not given), or AWS's error."""
    if vpc is None:
        return None
    subnets = list(vpc.get("SubnetIds") or [])
    groups = list(vpc.get("SecurityGroupIds") or [])
    if not subnets and not groups:
        return empty_config()
    if not subnets or not groups:
        raise InvalidParameterValueException("SubnetIds and SecurityIds must coexist or be both empty list.")
    vpcs = set()
    for group in groups:
        try:
            vpcs.add(platform.ec2.get_security_group(account, region, group)["VpcId"])
        except AwsError as exc:
            raise _ec2_error("DescribeSecurityGroups", exc) from exc
    for subnet in subnets:
        try:
            vpcs.add(platform.ec2.get_subnet(account, region, subnet)["VpcId"])
        except AwsError as exc:
            raise _ec2_error("DescribeSubnets", exc) from exc
    if len(vpcs) > 1:
        raise InvalidParameterValueException("Security groups and subnets must belong to the same VPC.")
    if not role_may_manage_interfaces(platform, account, role_arn):
        raise InvalidParameterValueException(
            "The provided execution role does not have permissions to call CreateNetworkInterface on EC2"
        )
    return {
        "SubnetIds": subnets,
        "SecurityGroupIds": groups,
        "Ipv6AllowedForDualStack": bool(vpc.get("Ipv6AllowedForDualStack", False)),
        "VpcId": vpcs.pop(),
    }


class HyperplaneFailure(LaminaError):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Hyperplane:
    """The shared interfaces. ``ensure`` runs during preparation; ``sweep`` frees unused ones."""

    def __init__(self, platform: Platform, enis: HyperplaneStore, *, release_delay_s: float) -> None:
        self.platform = platform
        self.enis = enis
        self.release_delay_s = release_delay_s
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._last_used: dict[FunctionRef, float] = {}
        self._stop = threading.Event()
        self._idle_s = float("inf")
        self._started = time.monotonic()
        self._reclaimer: threading.Thread | None = None

    def ensure(self, account: str, region: str, function: str, vpc: VpcConfigResponse) -> list[str]:
        """The interface of every subnet of ``vpc`` (created when missing)."""
        key = groups_key(vpc["SecurityGroupIds"])
        enis = []
        with self._lock:
            for subnet in vpc["SubnetIds"]:
                existing = self.interface_for(account, region, subnet, vpc["SecurityGroupIds"])
                if existing is not None:
                    try:
                        self.platform.ec2.get_interface(account, region, existing)
                        enis.append(existing)
                        continue
                    except AwsError:
                        pass  # deleted behind our back: make a new one
                try:
                    eni = self.platform.ec2.create_interface(
                        account,
                        region,
                        subnet,
                        sorted(vpc["SecurityGroupIds"]),
                        f"AWS Lambda VPC ENI-{function}-{uuid.uuid4()}",
                    )
                except AwsError as exc:
                    raise HyperplaneFailure(_reason_code(exc), _reason_text(exc)) from exc
                self.enis.put(account, region, subnet, key, eni["NetworkInterfaceId"], eni["VpcId"])
                enis.append(str(eni["NetworkInterfaceId"]))
        return enis

    def interface_for(self, account: str, region: str, subnet: str, groups: list[str]) -> str | None:
        """The shared interface of (subnet, groups), if there is one."""
        return self.enis.get(account, region, subnet, groups_key(groups))

    def schedule_sweep(self) -> None:
        """Free unused interfaces after the release delay (AWS takes up to 20 minutes)."""
        if self.release_delay_s <= 0:
            self.sweep()
            return
        with self._lock:
            if self._timer is not None:
                return
            self._timer = threading.Timer(self.release_delay_s, self._timed_sweep)
            self._timer.start()

    def _timed_sweep(self) -> None:
        with self._lock:
            self._timer = None
        self.sweep()

    def sweep(self) -> None:
        """Delete the shared interfaces no function (not Inactive) uses any more."""
        used = set()
        for account, region, vpc in self.platform.functions.vpc_configs_in_use():
            for subnet in vpc.get("SubnetIds", []):
                used.add((account, region, subnet, groups_key(vpc.get("SecurityGroupIds", []))))
        for shared in self.enis.all():
            if (shared.account, shared.region, shared.subnet_id, shared.groups_key) in used:
                continue
            with contextlib.suppress(AwsError):  # already gone is fine
                self.platform.ec2.delete_interface(shared.account, shared.region, shared.eni_id)
            self.enis.delete(shared.account, shared.region, shared.subnet_id, shared.groups_key)

    # -- idle reclaim ---------------------------------------------------------------------------

    def touch(self, function: FunctionRef) -> None:
        """The function was invoked (its VPC connection is in use)."""
        self._last_used[function] = time.monotonic()

    def start_idle_reclaim(self, idle_s: float) -> None:
        """Functions in a VPC unused for ``idle_s`` lose their interfaces and go Inactive (as in Lambda)."""
        self._idle_s = idle_s
        self._started = time.monotonic()
        self._reclaimer = threading.Thread(target=self._reclaim_loop, name="lamina-vpc-idle")
        self._reclaimer.start()

    def _reclaim_loop(self) -> None:
        affinity.release_thread()
        interval = max(0.2, min(60.0, self._idle_s / 4))
        while not self._stop.wait(interval):
            try:
                self.reclaim_idle()
            except Exception:
                log.exception("idle reclaim failed")

    def reclaim_idle(self) -> None:
        now = time.monotonic()
        reclaimed = False
        for function in self.platform.functions.active_in_vpc():
            last = self._last_used.get(function, self._started)
            if now - last < self._idle_s:
                continue

            def change(row: FunctionRow) -> FunctionRow:
                if row.config.get("State") != State.ACTIVE.value:
                    return row
                config = row.config.copy()
                config["State"] = State.INACTIVE.value
                config["StateReason"] = "The function is currently idle."
                config["StateReasonCode"] = "Idle"
                config["RevisionId"] = str(uuid.uuid4())
                return row.with_config(config)

            self.platform.functions.update(function.account, function.region, function.name, change)
            self.platform.retire(function.account, function.region, function.name)
            reclaimed = True
        if reclaimed:
            self.sweep()

    def close(self) -> None:
        """Stop the idle reclaim and a pending release; returns once their threads have ended."""
        self._stop.set()
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            timer.join()
        if self._reclaimer is not None:
            self._reclaimer.join()


def _reason_code(exc: AwsError) -> str:
    if exc.code == "InsufficientFreeAddressesInSubnet":
        return "SubnetOutOfIPAddresses"
    if exc.code.startswith("InvalidSubnet"):
        return "InvalidSubnet"
    if exc.code.startswith("InvalidGroup") or exc.code.startswith("InvalidSecurityGroup"):
        return "InvalidSecurityGroup"
    if "Limit" in exc.code:
        return "EniLimitExceeded"
    return "InternalError"


def _reason_text(exc: AwsError) -> str:
    if exc.code == "InsufficientFreeAddressesInSubnet":
        return (
            "Lambda was unable to create an ENI in the subnet: the subnet does not have enough free IP "
            f"addresses. EC2 Error Message: {exc.message}"
        )
    return f"Lambda was unable to create a network interface: EC2 Error Code: {exc.code}. EC2 Error Message: {exc.message}"

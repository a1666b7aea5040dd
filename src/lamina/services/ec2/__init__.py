"""EC2, the VPC subset (ec2 protocol, botocore model ``ec2/2016-11-15``).

VPCs (a default one per account and region), subnets, security groups and their rules, internet
and NAT gateways, Elastic IPs (on NAT gateways and network interfaces), route tables, network ACLs
and network interfaces, the account's attributes and the regions, with EC2's errors, filters, tags
and DryRun, in the regions of AWS's ``aws`` partition (another region answers ``AuthFailure``, as
EC2 does in a region an account cannot use). The rules are in :mod:`lamina.domain.ec2`; state
lives in :class:`lamina.store.ec2.Ec2Store` (what the handlers receive), which is also the Python API the Lambda side uses for its Hyperplane interfaces
(``create_interface`` / ``delete_interface`` / ``get_subnet`` / ``get_security_group``) and whose
``listeners`` hear of every change.
"""

from __future__ import annotations

from typing import Any

from lamina.errors import AwsError
from lamina.services.base import Handler, RequestContext, ServiceBinding
from lamina.services.ec2 import (
    handlers_account,
    handlers_dns,
    handlers_endpoints,
    handlers_gateways,
    handlers_interfaces,
    handlers_nacls,
    handlers_routes,
    handlers_secgroups,
    handlers_tags,
    handlers_vpcs,
)
from lamina.services.ec2.handlers_routes import is_public_subnet, table_for_subnet
from lamina.store.ec2 import Ec2Store

__all__ = ["binding", "is_public_subnet", "table_for_subnet"]


def binding(loader: Any, ec2: Ec2Store) -> ServiceBinding[Ec2Store]:
    """EC2's operations bound to its botocore model (``loader``: a botocore session); the handlers
    receive the EC2 store, which makes each (account, region)'s default VPC on its first use."""
    ec2.first_use = handlers_account.build_default_vpc
    regions = handlers_account.aws_regions(loader)
    handlers: dict[str, Handler[Ec2Store]] = {
        **handlers_vpcs.HANDLERS,
        **handlers_secgroups.HANDLERS,
        **handlers_gateways.HANDLERS,
        **handlers_routes.HANDLERS,
        **handlers_interfaces.HANDLERS,
        **handlers_nacls.HANDLERS,
        **handlers_tags.HANDLERS,
        **handlers_account.HANDLERS,
        "DescribeRegions": handlers_account.regions_handler(regions),
        **handlers_dns.HANDLERS,
        **handlers_endpoints.HANDLERS,
    }
    known = frozenset(regions)
    return ServiceBinding(
        model=loader.get_service_model("ec2"),
        deps=ec2,
        handlers={name: in_partition(known, handler) for name, handler in handlers.items()},
    )


def in_partition(regions: frozenset[str], handler: Handler[Ec2Store]) -> Handler[Ec2Store]:
    """``handler``, answering ``AuthFailure`` in a region outside ``regions``: each region has its
    own default VPC and quotas (Elastic IPs from the one shared pool), so an invented region name
    must not be a fresh set of them. EC2 answers a region the account cannot use so (401)."""

    def handle(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> Any:
        if ctx.region not in regions:
            raise AwsError(
                "AWS was not able to validate the provided access credentials",
                code="AuthFailure",
                status=401,
                sender_fault=True,
            )
        return handler(store, ctx, params)

    return handle

"""The VPC data plane: network namespaces, veth pairs, routes and nftables rules that make the kernel
match a :class:`lamina.domain.dataplane.VpcPlan`."""

from lamina.net.commands import DataplaneError
from lamina.net.vpc import VpcDataplane

__all__ = ["DataplaneError", "VpcDataplane"]

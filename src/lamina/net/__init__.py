"""The VPC data plane: network namespaces, veth pairs, routes and nftables rules that make the kernel
match a :class:`lamina.domain.dataplane.VpcPlan`, kept in step with the EC2 state by a
:class:`DataplaneManager`."""

from lamina.net.commands import DataplaneError
from lamina.net.manager import DataplaneManager
from lamina.net.vpc import VpcDataplane

__all__ = ["DataplaneError", "DataplaneManager", "VpcDataplane"]

"""Loading nftables rulesets into a namespace.

Facts about nftables (nft 1.0.6, Linux 6.x):
- Everything in one ``nft -f`` input is one transaction: the ruleset seen by packets switches
  from old to new at commit, never half way, and a failing line changes nothing.
- ``table X {}`` + ``delete table X`` + the new definition replaces a table whatever was in it
  (``destroy table`` only arrives in nft 1.0.8). Conntrack entries do not belong to any table, so
  flows already tracked stay tracked across the swap.
- The rules are in force when ``nft`` exits: the commit is synchronous.
- ``inet`` tables with ``ct state`` work in any network namespace (filter, SNAT, masquerade); each
  namespace has its own ruleset and its own conntrack table. Bridge-family conntrack is *not*
  available (``CONFIG_NF_CONNTRACK_BRIDGE`` unset here): stateful filtering must see routed
  traffic, one more reason the VPC is routed, not bridged.
- A transaction that deletes a base chain (so also one replacing a table that has them) or
  deletes set elements waits for an RCU grace period before ``nft`` returns: some 10-25 ms here,
  against 1-2 ms for one that only creates tables or adds set elements. So a namespace's first
  table is created, not replaced, and what changes often lives in sets
  (``domain.dataplane.set_updates``, ``domain.edge.render_edge_public``).
"""

from __future__ import annotations

from lamina.linux import NetNamespace
from lamina.net import commands


def load(ns: NetNamespace, script: str) -> None:
    """Apply an ``nft -f`` script inside ``ns`` as one transaction (``DataplaneError`` if refused)."""
    commands.run(ns, ["nft", "-f", "-"], stdin=script)

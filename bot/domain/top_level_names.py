"""The top-level names of the cloud trust (``Set-AzureADKerberosServer -TopLevelNames``), checked
before approvers see a request.

The trusted domain object's forest trust information carries one top-level-name record per
name. The LSA refuses a set in which one name lies under another (``core.windows.net`` under
``windows.net``) or repeats, and a name that is not a DNS name; the module then fails after it has
created the trust account in AD. So such a set is refused at request time.
"""

from __future__ import annotations

import re

from bot.domain.errors import UsageError
from bot.domain.model import dns_name

MAX_NAMES = 8  # the clouds Microsoft documents need at most two (the sovereign one and windows.net)
# The DNS suffixes of Azure SQL Managed Instance's clouds, as Microsoft documents them: public
# (database.windows.net, the module's default), Azure US Government (database.usgovcloudapi.net,
# the source document's example) and Azure operated by 21Vianet (database.chinacloudapi.cn).
ENTRA_TOP_LEVEL_NAMES = frozenset({"windows.net", "usgovcloudapi.net", "chinacloudapi.cn"})
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _is_dns_name(name: str) -> bool:
    labels = name.split(".")
    return len(name) <= 253 and len(labels) >= 2 and all(_LABEL.fullmatch(label) for label in labels)


def check_top_level_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` normalised (lower case, no trailing dot), or ``UsageError`` saying what the LSA would refuse."""
    normalised = tuple(dns_name(n) for n in names)
    if not normalised:
        raise UsageError("Give at least one top-level name, e.g. `--top-level-names windows.net`.")
    if len(normalised) > MAX_NAMES:
        raise UsageError(f"At most {MAX_NAMES} top-level names.")
    for name in normalised:
        if not _is_dns_name(name):
            raise UsageError(f"`{name[:80]}` is not a DNS name such as `usgovcloudapi.net`.")
    for name in normalised:
        if name not in ENTRA_TOP_LEVEL_NAMES and not any(name.endswith("." + t) for t in ENTRA_TOP_LEVEL_NAMES):
            known = ", ".join(f"`{t}`" for t in sorted(ENTRA_TOP_LEVEL_NAMES))
            raise UsageError(f"`{name}` is not the DNS suffix of an Azure cloud Entra Kerberos serves ({known}).")
    if len(set(normalised)) != len(normalised):
        raise UsageError("A top-level name is given twice.")
    for name in normalised:
        for other in normalised:
            if name != other and name.endswith("." + other):
                raise UsageError(
                    f"`{name}` lies under `{other}`: a trust's top-level names must not overlap (the LSA refuses "
                    f"the set, after the module has created objects in AD). Give `{other}` alone."
                )
    return normalised

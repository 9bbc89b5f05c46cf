"""Source IP -> country, offline, with the iptocc table (RIR assignments embedded in the wheel).

Country is the registry's assignment: a cloud provider's address block maps to the
provider's home country, and private or reserved addresses map to None. iptocc is imported
on first use so ``import keyguard.usage`` stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence


def countries(ips: Sequence[str | None]) -> list[str | None]:
    """ISO 3166-1 alpha-2 code per address, in order; None for missing or unassigned ones."""
    present = [ip for ip in ips if ip]
    if not present:
        return [None] * len(ips)
    import iptocc

    found = iter(iptocc.country_code(present))  # one batch call for the whole list
    return [next(found) if ip else None for ip in ips]

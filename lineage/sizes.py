"""The one size formatter of the lineage and publishing messages.

Decimal units (kB, MB, GB: 1 kB = 1000 bytes), as Dataverse shows file sizes, through
`humanize.naturalsize`. Every message that states a size uses this, so a size is never
printed twice in two units.
"""

from __future__ import annotations

import humanize

__all__ = ["human_size"]


def human_size(n_bytes: int) -> str:
    """`n_bytes` in decimal units with one decimal: '512 Bytes', '20.5 kB', '1.3 GB'."""
    return humanize.naturalsize(int(n_bytes))

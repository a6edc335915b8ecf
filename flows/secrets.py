"""The Dataverse API token for `a4nn publish` and the publish flow.

$DATAVERSE_API_TOKEN first; else the Prefect Secret block `dataverse-api-token` (create it
with `prefect block create secret`, or `Secret(value=...).save("dataverse-api-token")`).
Prefect is imported only when the environment variable is unset. lineage never looks the
token up itself: it receives the token, or this lookup, as an argument.
"""

from __future__ import annotations

import os

from lineage.dataverse.client import TOKEN_ENV, TokenError

__all__ = ["PREFECT_SECRET_BLOCK", "dataverse_token"]

PREFECT_SECRET_BLOCK = "dataverse-api-token"


def dataverse_token() -> str:
    """$DATAVERSE_API_TOKEN, else the Prefect Secret block `dataverse-api-token`; TokenError
    (one message naming both places and why the block gave nothing) when neither has one."""
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env
    from prefect.blocks.system import Secret

    try:
        value = Secret.load(PREFECT_SECRET_BLOCK).get()
    except ValueError:
        note = f"no Prefect Secret block named {PREFECT_SECRET_BLOCK!r} exists"
    except Exception as err:  # Prefect API unreachable, a block of another type, ...
        note = f"reading the Prefect Secret block failed ({type(err).__name__})"
    else:
        if isinstance(value, str) and value.strip():
            return value.strip()
        note = f"the Prefect Secret block {PREFECT_SECRET_BLOCK!r} is empty"
    raise TokenError(
        f"No Dataverse API token: set {TOKEN_ENV} (Dataverse: your account menu > API Token) "
        f"or store it in a Prefect Secret block named {PREFECT_SECRET_BLOCK!r}; {note}."
    )

"""The Dataverse API token for `a4nn publish` and the publish flow.

$DATAVERSE_API_TOKEN first; else the Prefect Secret block `dataverse-api-token` (create it
with `prefect block create secret`, or `Secret(value=...).save("dataverse-api-token")`) on
the Prefect server the environment names. lineage never looks the token up itself: it
receives the token, or this lookup, as an argument.

Prefect is imported only when the environment variable is unset *and* a Prefect API is
configured (`PREFECT_API_URL` in the environment or in the active Prefect profile): with
none, reading a block would start Prefect's temporary local server (seconds, and log
lines) only to find nothing, so the missing token is reported at once instead.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from lineage.dataverse.client import TOKEN_ENV, TokenError

__all__ = ["PREFECT_SECRET_BLOCK", "dataverse_token"]

PREFECT_SECRET_BLOCK = "dataverse-api-token"


def dataverse_token() -> str:
    """$DATAVERSE_API_TOKEN, else the Prefect Secret block `dataverse-api-token`; TokenError
    (one message naming both places and why the block gave nothing) when neither has one."""
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env
    if not prefect_api_configured():
        raise TokenError(
            f"No Dataverse API token: set {TOKEN_ENV} (Dataverse: your account menu > API "
            f"Token), or store it in a Prefect Secret block named {PREFECT_SECRET_BLOCK!r} "
            "on a Prefect server and set PREFECT_API_URL (none is set, so no block was read)."
        )
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


def prefect_api_configured() -> bool:
    """Whether a Prefect API is configured: PREFECT_API_URL in the environment, or in the
    active profile of Prefect's profiles file (PREFECT_PROFILES_PATH, else
    $PREFECT_HOME/profiles.toml, else ~/.prefect/profiles.toml). Read without importing
    Prefect (importing its settings takes seconds)."""
    if os.environ.get("PREFECT_API_URL", "").strip():
        return True
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        profiles = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    profile = profiles.get("profiles", {}).get(active, {})
    return isinstance(profile, dict) and bool(str(profile.get("PREFECT_API_URL", "")).strip())

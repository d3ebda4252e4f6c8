"""The one place where a claims challenge and client capabilities become the ``claims`` parameter.

Client capabilities are declared in the OIDC ``claims`` request parameter as
``{"access_token": {"xms_cc": {"values": [...]}}}`` (Continuous Access Evaluation declares ``cp1``;
https://learn.microsoft.com/entra/identity-platform/claims-challenge). A claims challenge from a
resource is a JSON object too; the capabilities are merged into its ``access_token`` member,
replacing any ``xms_cc`` there, and nothing else is changed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

__all__ = ["CAE_CAPABILITY", "merge_claims"]

#: The capability that opts a token request into Continuous Access Evaluation.
CAE_CAPABILITY = "CP1"


def merge_claims(claims: str | None, capabilities: Sequence[str] = ()) -> str | None:
    """The ``claims`` value to send, or ``None`` when there is nothing to send.

    Args:
        claims: a claims challenge (a JSON object as text), or ``None``/empty for none.
        capabilities: client capabilities to declare (e.g. ``["CP1"]`` for CAE).

    Raises:
        ValueError: ``claims`` is not a JSON object while capabilities must be merged into it.
    """
    if isinstance(capabilities, str):
        raise ValueError("capabilities must be a sequence of capability names, such as ['CP1'].")
    challenge = claims.strip() if claims else ""
    if not capabilities:
        return challenge or None
    merged: dict[str, Any]
    if challenge:
        try:
            parsed = json.loads(challenge)
        except (ValueError, RecursionError):
            parsed = None
        if not isinstance(parsed, dict):
            raise ValueError(
                "The claims challenge is not a JSON object. Pass the decoded claims from the "
                "resource's WWW-Authenticate header (a JSON text such as '{\"access_token\": ...}')."
            )
        merged = parsed
    else:
        merged = {}
    access_token = merged.get("access_token")
    access_token = dict(access_token) if isinstance(access_token, dict) else {}
    access_token["xms_cc"] = {"values": list(capabilities)}
    merged["access_token"] = access_token
    return json.dumps(merged)

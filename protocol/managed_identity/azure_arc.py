"""Azure Arc-enabled servers: the local Hybrid Instance Metadata Service (HIMDS) agent.

``GET $IDENTITY_ENDPOINT?api-version=2020-06-01&resource=R`` with ``Metadata: true``. The agent
answers 401 with ``WWW-Authenticate: Basic realm=<path>``: a key file it just wrote, readable only
by administrators and the ``himds`` group. Reading it proves the caller's privilege; the second
request carries ``Authorization: Basic <file contents>``
(https://learn.microsoft.com/azure/azure-arc/servers/managed-identity-authentication).

The advertised path is trusted only if it is a ``.key`` file of at most 4,096 bytes directly in the
platform's token directory (``/var/opt/azcmagent/tokens`` on Linux,
``%ProgramData%\\AzureConnectedMachineAgent\\Tokens`` on Windows): anything else could make the
credential read and send an arbitrary file. A user-assigned identity (agent 1.50+) must be echoed
in the token response, else the token is for the system identity and is refused.
"""

from __future__ import annotations

import os
import stat
import sys

import httpx

from ..errors import MalformedResponseError, ProtocolError
from ..flows import Clock, Flow, exchange
from ..responses import TokenResult
from ..retry import RetryPolicy
from ..wire import build_get_request
from .common import UserAssignedIdentity, endpoint_of, parse_token, read_body, server_error

__all__ = [
    "API_VERSION",
    "MAX_KEY_FILE_SIZE",
    "ArcKeyFileError",
    "arc_flow",
    "build_arc_request",
    "default_key_directory",
]

API_VERSION = "2020-06-01"
MAX_KEY_FILE_SIZE = 4096
SOURCE = "Azure Arc managed identity"

_PARAMS = {"client_id": "client_id", "object_id": "object_id", "resource_id": "msi_res_id"}


class ArcKeyFileError(ProtocolError):
    """The agent's challenge or key file cannot be trusted or read."""


def default_key_directory() -> str:
    """Where the Arc agent writes key files on this platform.

    Raises:
        ArcKeyFileError: the platform is neither Linux nor Windows, or ``ProgramData`` is unset.
    """
    if sys.platform.startswith("linux"):
        return "/var/opt/azcmagent/tokens"
    if sys.platform == "win32":
        program_data = os.environ.get("PROGRAMDATA")
        if not program_data:
            raise ArcKeyFileError(
                "Azure Arc managed identity: the PROGRAMDATA environment variable is not set."
            )
        return os.path.join(program_data, "AzureConnectedMachineAgent", "Tokens")
    raise ArcKeyFileError(f"Azure Arc managed identity is not supported on this platform ({sys.platform}).")


def build_arc_request(
    endpoint: str, resource: str, identity: UserAssignedIdentity | None, *, key: str | None = None
) -> httpx.Request:
    params = {"api-version": API_VERSION, "resource": resource}
    if identity is not None:
        params[_PARAMS[identity.kind]] = identity.value
    headers = {"Metadata": "true"}
    if key is not None:
        headers["Authorization"] = f"Basic {key}"
    return build_get_request(endpoint, params, headers=headers)


def read_key_file(challenge: str | None, directory: str) -> str:
    """The key named by the ``WWW-Authenticate`` challenge, after checking where it lives.

    Raises:
        ArcKeyFileError: no challenge, a challenge that is not ``Basic realm=<path>``, or a path
            outside ``directory``, without the ``.key`` extension, over 4,096 bytes or unreadable.
    """
    if not challenge:
        raise ArcKeyFileError(
            "Azure Arc managed identity: the agent's 401 answer has no WWW-Authenticate header."
        )
    scheme, _, realm = challenge.partition("=")
    if " ".join(scheme.split()).lower() != "basic realm" or not realm.strip():
        raise ArcKeyFileError(
            "Azure Arc managed identity: unrecognizable WWW-Authenticate header "
            "(expected 'Basic realm=<path>')."
        )
    path = realm.strip().strip('"')
    problem = ""
    if "\x00" in path:  # the os functions below raise ValueError on it
        problem = "it contains a NUL character"
    elif os.path.normcase(os.path.realpath(os.path.dirname(path))) != os.path.normcase(
        os.path.realpath(directory)
    ):
        problem = f"it is not in {directory}"
    elif not path.endswith(".key"):
        problem = "it does not have the .key extension"
    else:
        try:
            info = os.stat(path)
        except OSError as exc:
            problem = f"it cannot be read ({exc.strerror})"
        else:
            size = info.st_size
            if not stat.S_ISREG(info.st_mode):
                problem = "it is not a regular file"
            elif size > MAX_KEY_FILE_SIZE:
                problem = f"it is larger than {MAX_KEY_FILE_SIZE} bytes"
    if problem:
        raise ArcKeyFileError(f"Azure Arc managed identity: the key file path is invalid: {path}: {problem}.")
    try:
        with open(path, encoding="utf-8") as handle:
            key = handle.read(MAX_KEY_FILE_SIZE + 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise ArcKeyFileError(
            f"Azure Arc managed identity: cannot read the key file {path} ({exc}). The user running this "
            "process must be a member of the 'himds' group (Linux) or an administrator (Windows)."
        ) from exc
    if len(key.encode("utf-8")) > MAX_KEY_FILE_SIZE:  # it grew after the size check
        raise ArcKeyFileError(
            f"Azure Arc managed identity: the key file path is invalid: {path}: it is larger than "
            f"{MAX_KEY_FILE_SIZE} bytes."
        )
    return key


def _echoes(response: httpx.Response, identity: UserAssignedIdentity) -> bool:
    body = read_body(response)
    if not isinstance(body, dict):
        return False
    names = {
        "client_id": ("client_id",),
        "object_id": ("object_id",),
        "resource_id": ("msi_res_id", "mi_res_id"),
    }
    wanted = identity.value.lower()
    return any(
        isinstance(body.get(name), str) and body[name].lower() == wanted for name in names[identity.kind]
    )


def arc_flow(
    endpoint: str,
    resource: str,
    identity: UserAssignedIdentity | None,
    *,
    key_directory: str,
    policy: RetryPolicy,
    clock: Clock,
) -> Flow[TokenResult]:
    """The challenge round trip, then the token request with the key.

    Raises:
        ArcKeyFileError: the challenge or key file is not trustworthy.
        ServiceError: the agent answered with an error.
        MalformedResponseError: the first answer was not a challenge, or the token response is not
            one, or does not confirm the requested user-assigned identity.
    """
    first = yield from exchange(lambda: build_arc_request(endpoint, resource, identity), policy)
    response = first.response
    if response.status_code != 401:
        if response.status_code >= 400:
            raise server_error(SOURCE, response)
        raise MalformedResponseError(
            f"The {SOURCE} endpoint {endpoint_of(response)} answered HTTP {response.status_code} instead of "
            "the expected 401 challenge.",
            status_code=response.status_code,
            url=endpoint_of(response),
        )
    key = read_key_file(response.headers.get("www-authenticate"), key_directory)
    result = yield from exchange(
        lambda: build_arc_request(endpoint, resource, identity, key=key), policy, clock=clock
    )
    response = result.response
    if response.status_code >= 400:
        raise server_error(SOURCE, response)
    token = parse_token(response, requested_at=result.sent_at, source=SOURCE)
    if identity is not None and not _echoes(response, identity):
        raise MalformedResponseError(
            "Azure Arc did not confirm the requested user-assigned managed identity in the token response. "
            "The "
            "agent likely does not support user-assigned managed identities and returned the system-assigned "
            "identity; the token was refused.",
            status_code=response.status_code,
            url=endpoint_of(response),
        )
    return token

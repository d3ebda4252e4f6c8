"""Without azure-core: our own exception and token types, and a working credential.

The check runs in a subprocess whose first act is to install an import hook that refuses every
``azure`` module, as if azure-core were not installed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BLOCK_AZURE = """
import sys

class _NoAzure:
    def find_spec(self, name, path=None, target=None):
        if name == "azure" or name.startswith("azure."):
            raise ImportError(f"{name} is blocked for this test")
        return None

assert not any(name == "azure" or name.startswith("azure.") for name in sys.modules)
sys.meta_path.insert(0, _NoAzure())
"""

CHECKS = """
import asyncio
from urllib.parse import parse_qs

import httpx

import identity
import identity.aio
from identity import (
    AccessToken,
    AccessTokenInfo,
    AuthenticationRequiredError,
    ClientAuthenticationError,
    CredentialUnavailableError,
)

# the exception types are our own, with azure-core's shape
assert ClientAuthenticationError.__module__ == "identity.errors", ClientAuthenticationError.__module__
assert issubclass(ClientAuthenticationError, Exception)
response = httpx.Response(401)
error = ClientAuthenticationError(message="denied", response=response)
assert (error.message, error.response, str(error)) == ("denied", response, "denied")
assert error.status_code == 401
plain = ClientAuthenticationError()
assert plain.message and plain.response is None
assert issubclass(CredentialUnavailableError, ClientAuthenticationError)
required = AuthenticationRequiredError(["s"], claims="c")
assert (list(required.scopes), required.claims) == (["s"], "c")
assert isinstance(required, ClientAuthenticationError)

# token types: fields, repr, equality
token = AccessToken("tok", 123)
assert (token.token, token.expires_on) == ("tok", 123) and tuple(token) == ("tok", 123)
assert token == AccessToken("tok", 123) and token != AccessToken("tok", 124)
assert repr(token) == "AccessToken(token='***', expires_on=123)", repr(token)
info = AccessTokenInfo("tok", 123, refresh_on=100)
assert (info.token, info.expires_on, info.token_type, info.refresh_on) == ("tok", 123, "Bearer", 100)
assert info == AccessTokenInfo("tok", 123, token_type="Bearer", refresh_on=100)
assert info != AccessTokenInfo("tok", 123, token_type="PoP", refresh_on=100)
assert repr(info) == (
    "AccessTokenInfo(token='***', expires_on=123, token_type='Bearer', refresh_on=100)"
), repr(info)
try:
    AccessTokenInfo("tok", 123, "Bearer")
except TypeError:
    pass
else:
    raise AssertionError("token_type must be keyword-only")

# a credential gets a token through a mock transport, sync and async
requests = []

def handler(request):
    requests.append(request)
    if len(requests) == 3:
        return httpx.Response(401, json={"error": "invalid_client", "error_codes": [7000215]})
    return httpx.Response(200, json={"access_token": f"at-{len(requests)}", "expires_in": 3599})

url = "https://login.microsoftonline.com/tenant-a/oauth2/v2.0/token"
with identity.ClientSecretCredential(
    "tenant-a", "client-a", "secret-a", transport=httpx.MockTransport(handler)
) as credential:
    got = credential.get_token("https://vault.azure.net/.default")
    assert isinstance(got, AccessToken) and got.token == "at-1", got
    assert credential.get_token_info("https://vault.azure.net/.default").token == "at-1"

async def main():
    async with identity.aio.ClientSecretCredential(
        "tenant-a", "client-a", "secret-a", transport=httpx.MockTransport(handler)
    ) as credential:
        got = await credential.get_token_info("https://graph.microsoft.com/.default")
        assert isinstance(got, AccessTokenInfo) and got.token == "at-2", got
        try:
            await credential.get_token("https://storage.azure.com/.default")
        except ClientAuthenticationError as exc:
            assert "invalid_client" in exc.message, exc.message
        else:
            raise AssertionError("expected ClientAuthenticationError")

asyncio.run(main())
assert [(r.method, str(r.url)) for r in requests] == [("POST", url)] * 3
assert {k: v[0] for k, v in parse_qs(requests[0].content.decode()).items()} == {
    "client_id": "client-a",
    "grant_type": "client_credentials",
    "scope": "https://vault.azure.net/.default",
    "client_secret": "secret-a",
}
assert not any(name == "azure" or name.startswith("azure.") for name in sys.modules)
print("ok")
"""


def test_identity_works_without_azure_core() -> None:
    code = textwrap.dedent(BLOCK_AZURE) + textwrap.dedent(CHECKS)

    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"

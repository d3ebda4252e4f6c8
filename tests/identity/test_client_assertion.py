"""ClientAssertionCredential (sync and ``identity.aio``): ``func`` per token request, and its failures.

Every scenario runs twice through the ``api`` fixture against ``FakeEntra``. What ``func`` raises
may describe a token file's content, so its message is a canary: it must not reach the public
error's message, a log record or a ``repr``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import identity
import identity.aio
from identity import AccessToken, ClientAuthenticationError

from .fakes import (
    CLIENT_ID,
    FAST_RETRY,
    GRAPH,
    NOW,
    TENANT,
    VAULT,
    Api,
    FakeEntra,
    decoded_form,
    error_chain,
    token_url,
    unavailable_503,
)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FUNC_CANARY = "CANARY-FUNC-MESSAGE-5d2e"


@pytest.fixture(autouse=True)
def _no_func_message_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    yield
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for phase in ("setup", "call"):
        for record in caplog.get_records(phase):  # type: ignore[arg-type]
            assert FUNC_CANARY not in formatter.format(record)


class Assertions:
    """A ``func`` that returns a distinct JWT-shaped assertion per call and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return self.jwt(self.calls)

    @staticmethod
    def jwt(number: int) -> str:
        return f"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmZWRlcmF0ZWQtezB9In0.sig-{number}"


def assertion_credential(api: Api, func: Any, **kwargs: Any) -> Any:
    """The sync or async ClientAssertionCredential against ``FakeEntra``, on the test clock."""
    kwargs.setdefault("retry_policy", FAST_RETRY)
    kwargs.setdefault("transport", httpx.MockTransport(api.handler))
    module: Any = identity if api.mode == "sync" else identity.aio
    credential = module.ClientAssertionCredential(TENANT, CLIENT_ID, func, **kwargs)
    credential._core.clock = api.clock  # no public clock parameter (see fakes.Api.credential)
    api.opened.append(credential)
    return credential


def assertion_form(assertion: str, scope: str = VAULT) -> dict[str, str]:
    return {
        "client_id": CLIENT_ID,
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }


# --- func per token request -----------------------------------------------------------------------


async def test_func_result_is_sent_as_client_assertion(api: Api, entra: FakeEntra) -> None:
    func = Assertions()
    credential = assertion_credential(api, func)

    token = await api.get_token(credential, VAULT)

    assert token == AccessToken("CANARY-AT-9b2c-1", int(NOW) + 3599)
    [request] = entra.requests
    assert (request.method, str(request.url)) == ("POST", token_url())
    assert decoded_form(request) == assertion_form(Assertions.jwt(1))
    assert func.calls == 1


async def test_func_is_called_once_per_token_request_not_for_cached_tokens(
    api: Api, entra: FakeEntra
) -> None:
    func = Assertions()
    credential = assertion_credential(api, func)

    first = await api.get_token(credential, VAULT)
    cached = await api.get_token(credential, VAULT)
    cached_info = await api.get_token_info(credential, VAULT)
    graph = await api.get_token(credential, GRAPH)

    assert first == cached
    assert cached_info.token == first.token
    assert graph.token == "CANARY-AT-9b2c-2"
    assert func.calls == 2
    assert entra.forms == [assertion_form(Assertions.jwt(1)), assertion_form(Assertions.jwt(2), GRAPH)]


async def test_a_retried_request_gets_a_fresh_assertion(api: Api, entra: FakeEntra) -> None:
    entra.reply(unavailable_503())
    func = Assertions()
    credential = assertion_credential(api, func)

    token = await api.get_token(credential, VAULT)

    assert token.token == "CANARY-AT-9b2c-2"
    assert func.calls == 2
    assert entra.forms == [assertion_form(Assertions.jwt(1)), assertion_form(Assertions.jwt(2))]


async def test_surrounding_whitespace_is_stripped(api: Api, entra: FakeEntra) -> None:
    credential = assertion_credential(api, lambda: f"  {Assertions.jwt(7)}\n")

    await api.get_token(credential, VAULT)

    assert entra.forms == [assertion_form(Assertions.jwt(7))]


# --- func failures --------------------------------------------------------------------------------


def raising() -> str:
    raise RuntimeError(f"could not read /var/run/secrets/token: {FUNC_CANARY}")


async def test_func_raising_is_an_authentication_error_naming_only_the_type(
    api: Api, entra: FakeEntra
) -> None:
    credential = assertion_credential(api, raising)

    with pytest.raises(ClientAuthenticationError) as caught:
        await api.get_token(credential, VAULT)

    assert caught.value.message == (
        "ClientAssertionCredential: authentication failed. The client assertion callable raised "
        "RuntimeError; see the chained exception."
    )
    assert FUNC_CANARY not in str(caught.value)
    assert FUNC_CANARY not in repr(caught.value)
    assert FUNC_CANARY not in repr(credential)
    # The original exception stays reachable for debugging, through the chain only.
    [original] = [link for link in error_chain(caught.value) if isinstance(link, RuntimeError)]
    assert FUNC_CANARY in str(original)
    assert entra.requests == []


async def test_a_failing_func_is_not_remembered(api: Api, entra: FakeEntra) -> None:
    outcomes: list[Callable[[], str]] = [raising, lambda: Assertions.jwt(2)]

    def func() -> str:
        return outcomes.pop(0)()

    credential = assertion_credential(api, func)

    with pytest.raises(ClientAuthenticationError):
        await api.get_token(credential, VAULT)
    token = await api.get_token(credential, VAULT)

    assert token.token == "CANARY-AT-9b2c-1"
    assert entra.forms == [assertion_form(Assertions.jwt(2))]


@pytest.mark.parametrize(
    ("returned", "type_name"),
    [(None, "NoneType"), ("", "str"), ("  \n", "str"), (b"eyJ.a.b", "bytes"), (42, "int")],
    ids=["none", "empty", "blank", "bytes", "int"],
)
async def test_func_returning_no_assertion_is_an_authentication_error(
    api: Api, entra: FakeEntra, returned: object, type_name: str
) -> None:
    credential = assertion_credential(api, lambda: returned)

    with pytest.raises(ClientAuthenticationError) as caught:
        await api.get_token(credential, VAULT)

    assert caught.value.message == (
        "ClientAssertionCredential: authentication failed. The client assertion callable must return "
        f"the assertion (a JWT) as a non-empty string; it returned {type_name}."
    )
    assert entra.requests == []


@pytest.mark.parametrize("func", [None, "eyJ.a.b", 42], ids=["none", "string", "int"])
async def test_non_callable_func_is_a_value_error(api: Api, entra: FakeEntra, func: object) -> None:
    with pytest.raises(ValueError) as caught:
        assertion_credential(api, func)

    assert str(caught.value) == "func should be a callable that returns a client assertion (a JWT string)"
    assert entra.requests == []


async def test_repr_names_tenant_client_and_authority_only(api: Api) -> None:
    credential = assertion_credential(api, Assertions())

    assert repr(credential) == (
        f"ClientAssertionCredential(tenant_id='{TENANT}', client_id='{CLIENT_ID}', "
        "authority='https://login.microsoftonline.com')"
    )

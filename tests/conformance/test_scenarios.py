"""The conformance suite: every scenario against every implementation over the HTTPS mock.

Implementations: ``identity`` sync and async, and ``azure.identity`` sync and async (the reference
client; installed by the ``dev`` extra). A scenario is skipped only where an implementation lacks
the feature, with the reason in the skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.authority import MockAuthority
from conformance.implementations import Implementation, Target, all_implementations
from conformance.scenarios import SCENARIOS, run_scenario

IMPLEMENTATIONS = all_implementations()


@pytest.fixture
def served() -> Iterator[tuple[MockAuthority, Target]]:
    authority = MockAuthority.with_defaults()
    with authority.serve() as server:
        yield authority, Target(authority=server.url, ca_path=str(server.ca_path))
    assert not authority.unmatched, [f"{r.method} {r.url}" for r in authority.unmatched]


def test_reference_client_is_part_of_the_suite() -> None:
    names = [impl.name for impl in IMPLEMENTATIONS]
    assert names == ["identity[sync]", "identity[async]", "azure.identity[sync]", "azure.identity[async]"]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=lambda impl: impl.name)
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_scenario(name: str, impl: Implementation, served: tuple[MockAuthority, Target]) -> None:
    scenario = SCENARIOS[name]
    if name in impl.skips:
        pytest.skip(impl.skips[name])
    if not impl.supports(scenario.needs):
        pytest.skip(f"{impl.name} has no {scenario.needs} credential")
    authority, target = served
    await run_scenario(name, authority, target, impl)

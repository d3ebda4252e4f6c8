"""Microbenchmark of the persistent cache (not a test): ``python -m tests.cache.bench_persistent``.

Prints the cost per token written (a cache of N tokens, one token replaced per write; plaintext
and, when a keyring is usable, encrypted; with and without fsync) and of a read when the file is
unchanged (after the racy window), next to MemoryTokenCache's. Tokens are 1,500 characters, like
Entra ID's access tokens.
"""

from __future__ import annotations

import os
import tempfile
import time
import timeit

from cache.encrypted import keyring_problem
from cache.memory import AccessTokenEntry, CacheKey, MemoryTokenCache
from cache.persistent import PersistentTokenCache

TOKEN = "eyJ" + "x" * 1500
NOW = int(time.time())


def key(i: int) -> CacheKey:
    return CacheKey.for_access_token(
        environment="login.microsoftonline.com",
        tenant="72f988bf-86f1-41af-91ab-2d7cd011db47",
        client_id="04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        scopes=[f"https://resource{i}.example/.default"],
        cae=False,
    )


def write_cost(*, encrypted: bool, fsync: bool, tokens: int, writes: int) -> float:
    directory = tempfile.mkdtemp()
    cache = PersistentTokenCache.open(
        "bench", allow_unencrypted_storage=not encrypted, directory=directory, fsync=fsync
    )
    assert cache.encrypted == encrypted
    for i in range(tokens):
        cache.put(key(i), AccessTokenEntry(f"{TOKEN}{i}", "Bearer", NOW + 3600))
    started = time.perf_counter()
    for n in range(writes):
        cache.put(key(n % tokens), AccessTokenEntry(f"{TOKEN}-{n}", "Bearer", NOW + 3600))
    return (time.perf_counter() - started) / writes


def read_cost(*, encrypted: bool) -> tuple[float, float]:
    directory = tempfile.mkdtemp()
    cache = PersistentTokenCache.open("bench", allow_unencrypted_storage=not encrypted, directory=directory)
    cache.put(key(1), AccessTokenEntry(TOKEN, "Bearer", NOW + 3600))
    path = os.path.join(directory, "bench.nocae" + (".encrypted" if encrypted else ""))
    old = time.time_ns() - 10_000_000_000
    os.utime(path, ns=(old, old))  # past the racy window, as any file a second after its last write
    cache.get(key(1))
    memory = MemoryTokenCache()
    memory.put(key(1), AccessTokenEntry(TOKEN, "Bearer", NOW + 3600))
    k = key(1)
    n = 200_000
    persistent = min(timeit.repeat(lambda: cache.get(k), number=n, repeat=5)) / n
    in_memory = min(timeit.repeat(lambda: memory.get(k), number=n, repeat=5)) / n
    return persistent, in_memory


def main() -> None:
    import keyring
    import keyring.backends.fail

    session = keyring.get_keyring()
    modes = [False] if keyring_problem() else [False, True]
    for encrypted in modes:
        # plaintext rows: no keyring (a usable one would encrypt even with the opt-in)
        keyring.set_keyring(session if encrypted else keyring.backends.fail.Keyring())
        label = "encrypted" if encrypted else "plaintext"
        for tokens in (1, 10, 100, 1000):
            for fsync in (True, False):
                writes = 200 if tokens < 1000 else 40
                cost = write_cost(encrypted=encrypted, fsync=fsync, tokens=tokens, writes=writes)
                print(
                    f"{label} write, {tokens:4} tokens cached, fsync={fsync!s:5}: {cost * 1e6:7.1f} us/token"
                )
        persistent, in_memory = read_cost(encrypted=encrypted)
        stat = min(timeit.repeat(lambda: os.lstat("/"), number=200_000, repeat=5)) / 200_000
        print(
            f"{label} read, file unchanged: {persistent * 1e6:.2f} us "
            f"(MemoryTokenCache {in_memory * 1e6:.2f} us; os.lstat alone {stat * 1e6:.2f} us)"
        )
    if len(modes) == 1:
        print("(no usable keyring: encrypted rows skipped; run inside scripts/test.sh's D-Bus session)")


if __name__ == "__main__":
    main()

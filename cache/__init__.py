"""Token storage: keys, immutable entries, freshness, and stores.

* :mod:`cache.memory`: keys, entries, freshness and the in-memory store every credential uses by
  default.
* :mod:`cache.persistent`: the persistent store behind ``TokenCachePersistenceOptions``
  (:func:`cache.persistent.open_persistent_cache`), a drop-in for the memory store, built on
  :mod:`cache.schema` (MSAL's token-cache document), :mod:`cache.files` (private files, atomic
  replacement, change detection, the lock file msal-extensions respects) and
  :mod:`cache.encrypted` (AES-256-GCM, key in the OS keyring); its errors are in
  :mod:`cache.errors`.
* :mod:`cache.store`: the protocol both stores satisfy.

This package never sends a request and imports only types from :mod:`protocol`.
"""

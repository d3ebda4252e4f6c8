"""Token storage: keys, immutable entries, freshness, and stores.

Only :mod:`cache.memory` exists so far (the in-memory store every credential uses by default).
This package never sends a request and imports only types from :mod:`protocol`.
"""

"""The wire: Microsoft Entra ID endpoints over httpx, sans-IO at its core.

Each grant or endpoint is a module (``client_credentials``, ``refresh_token``,
``authorization_code`` + ``pkce``, ``device_code``, ``on_behalf_of``, ``password``,
``discovery``) exposing ``build_*_request`` and ``parse_*_response`` plus a generator flow.
:mod:`protocol.drivers` runs flows with sync or async I/O. Errors are in :mod:`protocol.errors`.

This package imports nothing of ``cache`` or ``identity``, and its ``__init__`` imports nothing at
all, so importing one module does not load the others.
"""

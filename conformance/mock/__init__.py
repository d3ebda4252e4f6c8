"""Building blocks of the mock Entra ID authority.

The public entry point is :class:`conformance.authority.MockAuthority`; the modules here hold its
parts so each stays small enough to read in one sitting:

``errors``     Entra-shaped error bodies and the AADSTS codes the mock uses
``models``     recorded requests, faults, issued tokens, directory and grant records
``keys``       the id-token signing key, JWKS, certificate thumbprints, test certificates
``context``    one parsed request (origin, path, form, headers) and JSON answers to it
``state``      configuration switches, the directory (tenants, apps, users) and grant stores
``clientauth`` client id, app lookup, secrets and certificate assertions (client authentication)
``tokens``     building successful token responses (access, refresh and id tokens)
``grants``     the token endpoint, one function per grant type
``device``     the device authorization endpoint and the device-code grant
``directory``  the registry (tenants, apps, users) and the seeding helpers
``discovery``  OpenID metadata, instance discovery, JWKS and user-realm endpoints
``federation`` federated identity credentials and the external issuers that mint their tokens
``managed_identity``  IMDS, App Service, Service Fabric, Arc, Azure ML and Cloud Shell endpoints
``pipelines``  Azure Pipelines' OIDC token endpoint (``AzurePipelinesCredential``'s first hop)
"""

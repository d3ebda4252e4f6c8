"""Managed identity token endpoints: one module per source, each building its requests and parsing
its answers, as flows the sync and async drivers run.

``selection``       which source the environment describes
``common``          user-assigned identities, token parsing (``expires_on`` forms), error bodies
``imds``            Azure Instance Metadata Service (probe, retry policy)
``azure_arc``       Azure Arc's challenge and key file
``sources``         App Service, Service Fabric, Azure ML, Cloud Shell (one round trip each)
``pinning``         Service Fabric's certificate thumbprint check
"""

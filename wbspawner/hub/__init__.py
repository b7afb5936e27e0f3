"""JupyterHub glue: the spawner, the hub's configuration, LDAP, settings."""

"""The SSH service: ``ssh`` and ``sftp`` into a user's own running server.

A user logs in with a key from their directory entry (``sshPublicKey``) or their
hub API token as password; the shell, the commands and the files are those of
their Jupyter server, reached through the hub's proxy (terminals and contents
APIs), so it works wherever the server and its home run.
"""

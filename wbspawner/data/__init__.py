"""Data access per group: S3 through IAM roles, shared file systems as mounts.

- :mod:`wbspawner.profiles.data_access` (below, pure): what a user's groups
  reach (their union), and every distinct union the profiles allow (one IAM
  role and ServiceAccount each);
- :mod:`wbspawner.spawn.data_pods` (below, pure): the pod pieces of the user's
  server and Dask pods, and the static EFS volumes;
- :mod:`~wbspawner.data.iam`: the role's permission and trust policies;
- :mod:`~wbspawner.data.plan`: what ``wbspawner data plan`` shows and
  ``apply`` does (pure), with :mod:`~wbspawner.data.volumes` (EFS volumes)
  over the shapes of :mod:`~wbspawner.data.state`; :mod:`~wbspawner.data.observe` and
  :mod:`~wbspawner.data.apply` read and change IAM and Kubernetes.
"""

from __future__ import annotations

from wbspawner.errors import WbError


class DataAccessError(WbError):
    """Data access cannot be planned or applied; the message says what to do."""

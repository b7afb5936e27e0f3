"""The kubelet: runs the pods bound to nodes as local processes.

- ``kubelet``: ``Kubelet``, one for every node: watches the store, marks nodes
  Ready, starts a worker per pod, serves container logs.
- ``worker``: one pod's life (status, restarts, termination), with ``pod`` (its
  run record and its calls to the store).
- The pod's sandbox: ``ips`` (its own loopback address), ``volumes`` (volume
  directories and mounts), ``images`` (pulls cached per node), ``containers``
  (the container as a process, and stopping it), ``logs`` (reading its log).
- Pure helpers: ``podspec`` (container env, path and address rewriting) and
  ``status`` (container states, pod conditions, node status).
"""

from devcluster.kubelet.containers import SIM_ANNOTATION
from devcluster.kubelet.kubelet import Kubelet

__all__ = ["SIM_ANNOTATION", "Kubelet"]

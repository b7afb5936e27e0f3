"""The kubelet: runs the pods bound to nodes as local processes.

- ``kubelet``: ``Kubelet``, one for every node: watches the store, marks nodes
  Ready, starts a worker per pod, serves logs, exec, attach and port-forward.
- ``worker``: one pod's life (sandbox, init containers, containers, status,
  teardown), with ``pod`` (its run record, its calls to the store, its sandbox).
- ``runner``: one container's runs, restarts and hooks; ``probing`` (when its
  probes run) and ``probes`` (probe and hook handlers, thresholds).
- The pod's sandbox: ``ips`` (its own loopback address), ``volumes`` (volume
  directories, mounts, fsGroup ownership), ``images`` (pulls cached per node),
  ``containers`` (a container's command line, env and user), ``identity`` (who
  it runs as), ``process`` (starting and stopping processes), ``cgroups`` (a
  cgroup per container), ``runtime`` (what all pods share), ``logs`` (CRI log
  files, and reading them).
- ``streaming``: the kubelet's streaming server (exec, attach, port-forward).
- Pure helpers: ``podspec`` (container env, path and address rewriting) and
  ``status`` (container states, pod phase and conditions, node status).
"""

from devcluster.kubelet.containers import SIM_ANNOTATION
from devcluster.kubelet.kubelet import Kubelet

__all__ = ["SIM_ANNOTATION", "Kubelet"]

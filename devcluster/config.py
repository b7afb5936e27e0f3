"""Settings of one devcluster run (ports, delays, modes), read by every part."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterConfig:
    """How a devcluster behaves. Every delay is in *simulated* seconds.

    Real seconds = simulated seconds × ``time_factor`` (0.01 turns a 180 s node boot
    into 1.8 s), so tests run fast and benchmarks replay a day in minutes.
    """

    host: str = "127.0.0.1"
    """Address the API and moto listen on."""
    api_port: int = 0
    """Kubernetes API port (0: pick a free one)."""
    moto_port: int = 0
    """moto server port (0: pick a free one)."""
    cluster_name: str = "wbspawner-dev"
    """Name used in Cluster Autoscaler auto-discovery tags."""
    region: str = "us-east-1"
    pod_aws_endpoint: str = ""
    """The AWS endpoint pods with an IAM role get (``AWS_ENDPOINT_URL``,
    ``AWS_ENDPOINT_URL_STS``; ``devcluster.apiserver.irsa``). ``Cluster``
    sets it to its moto server."""
    zones: tuple[str, ...] = ("us-east-1a", "us-east-1b", "us-east-1c")
    time_factor: float = 1.0
    """Real seconds per simulated second."""
    node_boot_s: float = 180.0
    """From ASG scale-up to the node being Ready."""
    image_pull_s: float = 60.0
    """First pull of an image on a node (cached per node afterwards)."""
    scale_down_unneeded_s: float = 600.0
    """An empty node is removed after being unneeded this long."""
    scan_interval_s: float = 10.0
    """Autoscaler loop period."""
    expendable_priority_cutoff: int = -10
    """Pods below this priority trigger no scale-up (placeholders at -10 still do)."""
    expander: str = "priority"
    """``priority`` (ConfigMap ``cluster-autoscaler-priority-expander``) or
    ``least-waste``."""
    snapshot_s: float = 30.0
    """Time for an EBS snapshot to complete."""
    kubelet_mode: str = "run"
    """``run`` executes container commands as local processes; ``sim`` only pretends."""
    pod_ip_base: str = "127.0.1.0"
    """Pod IPs are taken from this loopback /16 upward (127.0.1.1, 127.0.1.2, …)."""
    image_users: tuple[tuple[str, str], ...] = ()
    """Images' ``USER`` as (repository, ``uid[:gid]``): a container of such an
    image whose securityContext sets no ``runAsUser`` runs as that user, as a
    container runtime runs an image's USER. devcluster has no image metadata:
    a container of any other image runs as devcluster itself."""
    image_env: tuple[tuple[str, str], ...] = ()
    """Images' ``ENV`` as (repository, ``NAME=VALUE``), for images without a
    local environment (``image_environments``): a container of such an image
    starts with these variables under its own ``env``, as a runtime starts it
    with its image's ENV. An image ``HOME`` that no volume backs is given the
    container as the image would hold it: a directory owned by the image's
    ``USER`` (``devcluster.kubelet.containers``)."""
    service_cidr: str = "127.100.0.0/16"
    """Where Services' cluster IPs come from: loopback, far from the pod IPs, so
    devcluster's kube-proxy (``devcluster.proxy``) can listen on them. The first
    one is the ``kubernetes`` Service's (the API)."""
    container_paths: bool = False
    """Bind every volume mount and image file at its container path in the
    pod process's mount namespace (root only; ``devcluster.kubelet.mountns``),
    for programs that read fixed paths (the charts' pods). Off: containers find
    their volumes through rewritten paths only."""
    pod_binds: bool = False
    """Pod processes that listen on every address listen on their pod IP
    instead (an ``LD_PRELOAD`` library, ``devcluster.kubelet.podbind``), as in
    a pod's own network namespace; needs a C compiler."""
    field_validation: str = ""
    """The ``fieldValidation`` of writes that send none. ``""``: devcluster's
    own, stricter than the apiserver (an unknown field is a 422 cause, so a
    typo in the product fails); ``"Warn"``: the apiserver's default since
    1.25 (unknown fields are dropped), for clusters where third-party
    controllers write (the chart install: dask-gateway's controller sends
    ``target_port`` in a Service's ports, which an apiserver drops)."""
    image_environments: str = ""
    """The image mapping (``images/environments.yaml``): containers run in the
    local environment of their image (``devcluster.services.image_envs``), and
    an image it lacks fails to pull. Empty: every container runs with
    devcluster's own Python and any image "pulls"."""
    state_dir: str = ""
    """Where pod logs and persistent volume directories live (empty: a temp dir)."""
    static_nodes: tuple[dict[str, object], ...] = field(default=())
    """Nodes present at start (e.g. a core node for the hub), as partial Node dicts."""
    spot_notice_s: float = 120.0
    """Spot interruption notice: from the cordon to the instance being gone."""
    scale_up_backoff_s: float = 300.0
    """How long the autoscaler avoids a group after a failed scale-up."""
    namespaces: tuple[str, ...] = (
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "jhub",
    )
    """Namespaces created at start (each gets a ``default`` ServiceAccount)."""
    validate: bool = True
    """Check every written object (kubernetes-validate strict + name rules → 422)."""
    watch_history: int = 10000
    """Most watch events kept per resource; older resourceVersions get 410 Gone."""
    watch_cache_min_events: int = 100
    """Fewest watch events kept per resource, however old (the apiserver's 100)."""
    watch_cache_fresh_s: float = 75.0
    """Watch events younger than this are kept (up to ``watch_history``). Real
    seconds, not simulated: the clients that resume watches time out in real
    time. The apiserver's watch cache keeps 75 s of events."""

    def real(self, simulated_s: float) -> float:
        """Return the real duration of a simulated one."""
        return simulated_s * self.time_factor

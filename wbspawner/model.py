"""The frozen data model every part of wbspawner reads.

This module owns the *shape* of the validated profiles and of the instance
catalogue, and of what the warmer hands on (its status to the hub, its memory to
its next run): frozen, slotted dataclasses with tuples and read-only mappings.
It holds no I/O and no validation: :mod:`wbspawner.profiles.loader` turns admin
YAML into these objects after the schema and the semantic checks have passed,
and every other module (spawner, homes, pools, gateway, warmer, costs) only
reads them.

Units are fixed across the code base: memory in MiB (``int``), CPU in millicores
(``int``), money in US dollars (``float``), durations in seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

CapacityType = Literal["spot", "on-demand"]
"""How a node is bought. Order in a pool's list is the order of preference."""

CAPACITY_TYPES: tuple[CapacityType, ...] = ("spot", "on-demand")
"""Every capacity type, and a pool's list when the profiles give none."""

LABEL_PREFIX = "wbspawner.io"
"""Prefix of every label, annotation and taint key wbspawner owns."""
POOL_LABEL = f"{LABEL_PREFIX}/pool"
CAPACITY_LABEL = f"{LABEL_PREFIX}/capacity"
SIZE_LABEL = f"{LABEL_PREFIX}/size"
USER_LABEL = f"{LABEL_PREFIX}/user"
ZONE_LABEL = "topology.kubernetes.io/zone"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
GPU_RESOURCE = "nvidia.com/gpu"

EMPTY: Mapping[str, str] = MappingProxyType({})


def _empty() -> Mapping[Any, Any]:
    """Default factory for read-only mapping fields (dataclasses refuse shared ones)."""
    return MappingProxyType({})


def frozen_map(d: Mapping[str, object] | None = None) -> Mapping[str, object]:
    """Return a read-only copy of ``d`` (empty when ``None``)."""
    return MappingProxyType(dict(d or {}))


# --------------------------------------------------------------------------- catalogue


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceType:
    """One EC2 instance type as the catalogue ships it."""

    name: str
    """EC2 name, e.g. ``r5.2xlarge``."""
    vcpu: int
    """Virtual CPUs."""
    memory_mib: int
    """Nominal memory in MiB (``MemoryInfo.SizeInMiB``)."""
    enis: int
    """Default number of network interfaces (``MaximumNetworkInterfaces``)."""
    ipv4_per_eni: int
    """IPv4 addresses per interface; with ``enis`` this gives EKS maxPods."""
    price_per_hour: float
    """On-demand Linux price in the catalogue's region, USD per hour."""
    gpu_count: int = 0
    """Number of GPUs (0 for CPU types)."""
    gpu_kind: str | None = None
    """GPU model, e.g. ``T4`` or ``A10G``; ``None`` for CPU types."""
    gpu_memory_mib: int = 0
    """Memory of one GPU in MiB."""
    arch: str = "x86_64"
    """CPU architecture (``x86_64`` or ``arm64``)."""
    measured_capacity_mib: int | None = None
    """Kernel-visible memory measured on a real EKS node, overriding the estimate."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Catalog:
    """The instance catalogue: types by name, with provenance."""

    region: str
    """Region the prices are for, e.g. ``us-east-1``."""
    source: str
    """Where the numbers came from (URL or description)."""
    date: str
    """When they were taken (ISO date)."""
    types: Mapping[str, InstanceType]
    """Instance types by name."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    """A resource amount: a request, a limit or an allocatable."""

    cpu_m: int
    """CPU in millicores."""
    memory_mib: int
    """Memory in MiB."""
    gpus: int = 0
    """``nvidia.com/gpu`` count."""

    def as_k8s(self) -> dict[str, str]:
        """Return Kubernetes quantities (``{"cpu": "7910m", "memory": "62249Mi"}``)."""
        out = {"cpu": f"{self.cpu_m}m", "memory": f"{self.memory_mib}Mi"}
        if self.gpus:
            out[GPU_RESOURCE] = str(self.gpus)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class SizingSettings:
    """Node overheads used to turn an instance type into a full-node request."""

    daemonset_cpu_m: int = 200
    """CPU requested by DaemonSets on each node (aws-node, ebs-csi-node, kube-proxy)."""
    daemonset_memory_mib: int = 250
    """Memory requested by DaemonSets on every node."""
    gpu_daemonset_cpu_m: int = 50
    """Extra CPU of GPU-only DaemonSets (NVIDIA device plugin)."""
    gpu_daemonset_memory_mib: int = 100
    """Extra memory of GPU-only DaemonSets."""
    eviction_hard_mib: int = 100
    """kubelet ``evictionHard: memory.available``."""
    max_pods: int | None = None
    """Cap on maxPods (nodeadm ``maxPodsExpression``); ``None``: the ENI formula."""
    measured_capacity_mib: Mapping[str, int] = field(default_factory=_empty)
    """Kernel-visible memory measured per instance type, MiB (profiles ``sizing``);
    applied over the catalogue once, at load (:attr:`Profiles.catalog`)."""


# ---------------------------------------------------------------------------- profiles


@dataclass(frozen=True, slots=True, kw_only=True)
class Pool:
    """A node pool: one memory class (optionally with GPUs) backed by same-size types.

    Each pool gets one Auto Scaling group per zone and per capacity type.
    """

    name: str
    """Pool name; also the node label/taint value ``wbspawner.io/pool=<name>``."""
    display_name: str
    """Human name, e.g. ``64 GiB``."""
    instance_types: tuple[str, ...]
    """Catalogue names; all have the same vCPU, memory and GPUs. First is primary."""
    capacity_types: tuple[CapacityType, ...]
    """Capacity types in order of preference, e.g. ``("spot", "on-demand")``."""
    zones: tuple[str, ...]
    """Availability zones the pool has node groups in."""
    min_nodes: int = 0
    """Minimum nodes per zone and capacity type (ASG MinSize)."""
    max_nodes: int = 10
    """Maximum nodes per zone and capacity type (ASG MaxSize)."""
    root_volume_gib: int = 100
    """Size of the node's encrypted gp3 root volume."""
    purpose: tuple[str, ...] = ("user",)
    """What may run there: ``user`` servers, ``dask`` workers/schedulers."""
    labels: Mapping[str, str] = field(default_factory=_empty)
    """Extra node labels."""
    request: Resources
    """The computed full-node request of a pod on this pool (min over its types)."""
    gpu_count: int = 0
    """GPUs per node."""
    gpu_kind: str | None = None
    """GPU model, e.g. ``A10G``."""
    vcpu: int
    """vCPUs per node (equal across the pool's types)."""
    memory_mib: int
    """Nominal memory per node (equal across the pool's types)."""
    price_per_hour: float
    """On-demand $/hour of the cheapest of the pool's types."""

    @property
    def is_gpu(self) -> bool:
        """Whether nodes of this pool carry GPUs."""
        return self.gpu_count > 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageChoice:
    """One image a user may pick for a size."""

    slug: str
    """Form value."""
    display_name: str
    """Label in the form."""
    image: str
    """Container image reference."""
    default: bool = False
    """Preselected choice."""
    allowed_groups: tuple[str, ...] = ()
    """Groups that may pick it; empty means everyone who may use the size."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Size:
    """A server size a user picks on the spawn form."""

    slug: str
    """Form value and KubeSpawner profile slug."""
    display_name: str
    """Title in the form."""
    description: str
    """One line under the title."""
    pool: str
    """Name of the pool it runs on."""
    default: bool = False
    """Preselected size (exactly one per user-visible list)."""
    allowed_groups: tuple[str, ...] = ()
    """Groups that may use it; empty means every user allowed to log in."""
    images: tuple[ImageChoice, ...]
    """Image choices; at least one."""
    environment: Mapping[str, str] = field(default_factory=_empty)
    """Extra environment variables of the server."""
    home_size_gib: int = 10
    """Size of a new home volume."""
    home_size_by_group: Mapping[str, int] = field(default_factory=_empty)
    """Larger home sizes for members of these groups (largest wins)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DaskWorkerSize:
    """A worker size offered to notebooks, packed into one pool's nodes."""

    name: str
    """Option value, e.g. ``m64-quarter``."""
    display_name: str
    """Label."""
    pool: str
    """Pool the workers run on."""
    workers_per_node: int
    """Workers that share one node; the worker gets the node request / this."""
    allowed_groups: tuple[str, ...] = ()
    """Groups that may pick it; empty means every user."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DaskLimits:
    """Limits on one user's Dask clusters (``None``: no limit)."""

    max_clusters: int | None = None
    max_workers: int | None = None
    max_cores: float | None = None
    max_memory_gib: float | None = None
    max_gpus: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DaskSettings:
    """Dask Gateway options and limits."""

    scheduler_pool: str | None
    """Pool of schedulers; ``None`` puts them with the workers."""
    scheduler_cores: float = 1.0
    scheduler_memory_gib: float = 2.0
    worker_sizes: tuple[DaskWorkerSize, ...] = ()
    default_worker_size: str | None = None
    max_workers_per_cluster: int = 50
    idle_timeout_s: int = 1800
    limits: DaskLimits = DaskLimits()
    """Limits for every user."""
    group_limits: Mapping[str, DaskLimits] = field(default_factory=_empty)
    """Looser limits for members of a group (the loosest applies)."""
    user_limits: Mapping[str, DaskLimits] = field(default_factory=_empty)
    """Per-user limits, overriding group and default limits."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeWindow:
    """A weekly time window, in the schedule's time zone."""

    days: frozenset[int]
    """ISO weekdays 1 (Monday) … 7 (Sunday)."""
    start_minute: int
    """Minutes after midnight, inclusive."""
    end_minute: int
    """Minutes after midnight, exclusive; may be ≤ start to wrap past midnight."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WarmSchedule:
    """Keep warm nodes of a pool during some windows."""

    name: str
    pool: str
    windows: tuple[TimeWindow, ...]
    nodes_per_zone: int
    """Warm nodes to keep in each selected zone while a window is open."""
    zones: tuple[str, ...] | Literal["homes", "all"] = "homes"
    """Zones to keep warm: a list, ``all`` of the pool's, or ``homes`` (with homes)."""
    capacity_fallback: bool = True
    """Use on-demand placeholders when spot capacity is short."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WarmSettings:
    """The warmer's global settings."""

    timezone: str = "UTC"
    mode: Literal["placeholders", "asg-min"] = "placeholders"
    budget_per_hour: float | None = None
    """Cap on the warm capacity's cost, USD per hour."""
    demand_window_s: int = 3600
    """How far back recent spawns count as demand."""
    habit_days: int = 28
    """Days of recorded server starts that tell when users usually start (0: off)."""
    habit_margin_min: int = 20
    """A user counts as coming this many minutes either side of a usual start time."""
    schedules: tuple[WarmSchedule, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CostItem:
    """An always-on item of the base infrastructure."""

    name: str
    per_hour: float = 0.0
    per_month: float = 0.0
    count: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class CostSettings:
    """How to price things."""

    region: str = "us-east-1"
    currency: str = "USD"
    spot_discount: float = 0.65
    """Assumed spot discount when no spot price is known (0.65 = 65 % off)."""
    ebs_gb_month: float = 0.08
    snapshot_gb_month: float = 0.05
    base: tuple[CostItem, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupBudget:
    """A monthly budget for a group's spending."""

    group: str
    monthly: float
    warn_fraction: float = 0.8
    free_sizes: tuple[str, ...] = ()
    """Sizes that stay allowed when the budget is spent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HomeSettings:
    """Where and how homes are made."""

    storage_class: str = "wbspawner-home"
    default_zone: str | None = None
    mount_path: str = "/home/jovyan"
    auto_move: bool = False
    """Move a home whose zone cannot get a node, then go on with the spawn
    (:mod:`wbspawner.hub.automove`); off: the refusal offers the admin's command."""
    retention_days: int = 14
    """Keep the old volume and snapshot this long after a move."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CullSettings:
    """When idle servers are warned and stopped (the ``culling`` section)."""

    enabled: bool = True
    idle_timeout_s: int = 3600
    """Seconds without use before a server is stopped (sizes without their own)."""
    warn_before_s: int = 600
    """Seconds before the stop at which the user is warned."""
    max_busy_age_s: int = 86400
    """Seconds a busy kernel still counts as use."""
    orphan_grace_s: int = 300
    """Seconds before a server pod the hub does not know is deleted (0: never)."""
    size_timeouts_s: Mapping[str, int] = field(default_factory=_empty)
    """Idle timeouts by size slug."""

    def idle_timeout_of(self, size: str | None) -> int:
        """Return the idle timeout of a size (the default for unknown sizes)."""
        return self.size_timeouts_s.get(size or "", self.idle_timeout_s)


S3Access = Literal["read", "read-write"]
"""What a group may do in a bucket (or under a prefix): read, or read and write."""
VolumeKind = Literal["efs", "nfs", "claim"]
"""Where a shared file system comes from: an EFS file system (through its CSI
driver), an NFS export, or an existing PersistentVolumeClaim."""


@dataclass(frozen=True, slots=True, kw_only=True)
class S3Grant:
    """Access to one bucket, or to one prefix of it."""

    bucket: str
    prefix: str = ""
    """Key prefix, ending with ``/``; empty: the whole bucket."""
    access: S3Access = "read"

    @property
    def writes(self) -> bool:
        """Whether the grant allows writing."""
        return self.access == "read-write"


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedVolume:
    """A shared file system mounted into the servers (and Dask pods) of a group."""

    name: str
    """Short name; the pod volume is ``data-<name>``."""
    mount_path: str
    read_only: bool = True
    kind: VolumeKind
    file_system_id: str | None = None
    """EFS file system id (``fs-…``), for ``efs``."""
    access_point: str | None = None
    """EFS access point id (``fsap-…``), for ``efs``; optional."""
    server: str | None = None
    """NFS server, for ``nfs``."""
    path: str | None = None
    """NFS export path, for ``nfs``."""
    claim: str | None = None
    """Existing PersistentVolumeClaim, for ``claim``."""

    def same_source(self, other: SharedVolume) -> bool:
        """Return whether two volumes name the same file system at the same path."""
        return (
            self.mount_path,
            self.kind,
            self.file_system_id,
            self.access_point,
            self.server,
            self.path,
            self.claim,
        ) == (
            other.mount_path,
            other.kind,
            other.file_system_id,
            other.access_point,
            other.server,
            other.path,
            other.claim,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupData:
    """The data one group reaches."""

    s3: tuple[S3Grant, ...] = ()
    volumes: tuple[SharedVolume, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSettings:
    """Data access per group (the ``data`` section)."""

    groups: Mapping[str, GroupData] = field(default_factory=_empty)


# ----------------------------------------------------------------------- observed state


@dataclass(frozen=True, slots=True, kw_only=True)
class WarmStatus:
    """Ready warm nodes per pool and zone, as the warmer last reported them.

    The warmer writes it to the ``WARM_STATUS_FILE`` and the hub reads it back
    (:mod:`wbspawner.adapters.statefiles`); the spawn form and the choice of a
    first home's zone read it from here, never from JSON.
    """

    ready: Mapping[str, Mapping[str, int]] = field(default_factory=_empty)
    """Running placeholders (ready nodes nobody holds) by pool name, then zone."""

    @classmethod
    def of(cls, ready: Mapping[str, Mapping[str, int]]) -> WarmStatus:
        """Return a status holding a read-only copy of ``ready``."""
        return cls(
            ready=MappingProxyType(
                {pool: MappingProxyType(dict(zones)) for pool, zones in ready.items()}
            )
        )

    def in_pool(self, pool: str, zone: str | None = None) -> int:
        """Return the ready nodes of a pool, in one zone or (``None``) in all."""
        zones = self.ready.get(pool, {})
        return sum(n for z, n in zones.items() if zone is None or z == zone)

    def by_pool(self, zone: str | None = None) -> dict[str, int]:
        """Return the ready nodes of every pool, in one zone or (``None``) in all."""
        return {pool: self.in_pool(pool, zone) for pool in self.ready}


@dataclass(frozen=True, slots=True, kw_only=True)
class Spawn:
    """A user pod that was created (a spawn), remembered after its pod is gone."""

    uid: str
    user: str | None
    pool: str
    zone: str | None
    at: datetime
    """When the pod was created (aware)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Shortage:
    """A sign that a pool cannot get nodes of a capacity type in a zone."""

    pool: str
    zone: str
    capacity_type: CapacityType
    at: datetime
    """When the sign was seen (aware)."""
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitSample:
    """One cold start: how long a pod waited for a new node, then to be Ready.

    As the cluster showed it, for one pool and zone. The warmer reads them from
    pods' own timestamps and keeps the last few per pool and zone in the
    ``WAIT_TIMES_FILE``; the spawn form and the progress page say the wait from
    them (:mod:`wbspawner.spawn.waits`).
    """

    uid: str
    """The pod's uid: one sample per pod."""
    pool: str
    zone: str
    at: datetime
    """When the pod got its node (aware)."""
    boot_s: float
    """Seconds from the pod's creation to its node (the node started for it)."""
    start_s: float | None = None
    """Seconds from the node to the pod being Ready (image pull, home volume
    attach, container start); ``None`` for a placeholder (its images are not a
    user's)."""


ALL_ZONES = "*"
"""The zone key of a pool's wait times over all its zones."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitTime:
    """The median cold start of a pool in a zone (or in all its zones)."""

    boot_s: float | None = None
    """Seconds until a pod has a new node; ``None``: none observed."""
    start_s: float | None = None
    """Seconds from the new node to a Ready user pod; ``None``: none observed."""
    samples: int = 0
    """How many cold starts the medians are of."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitTimes:
    """Median cold starts per pool and zone, as the warmer last reported them.

    The warmer writes them to the ``WAIT_TIMES_FILE`` and the hub reads them
    back (:mod:`wbspawner.adapters.statefiles`): a few numbers per pool and
    zone, so that the spawn form's wait costs the hub almost nothing.
    """

    by_pool: Mapping[str, Mapping[str, WaitTime]] = field(default_factory=_empty)
    """Pool → zone (:data:`ALL_ZONES`: every zone of the pool) → medians."""

    @classmethod
    def of(cls, by_pool: Mapping[str, Mapping[str, WaitTime]]) -> WaitTimes:
        """Return wait times holding a read-only copy of ``by_pool``."""
        return cls(
            by_pool=MappingProxyType(
                {pool: MappingProxyType(dict(z)) for pool, z in by_pool.items()}
            )
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class WarmerMemory:
    """What the warmer remembers between passes that no listing shows again.

    Spawns whose pods are gone count as demand for ``demand_window_s``, and a
    shortage for its time to live. The warmer keeps them in a state file
    (:mod:`wbspawner.adapters.statefiles`) so that a restart keeps warm what
    was warm.
    """

    spawns: tuple[Spawn, ...] = ()
    shortages: tuple[Shortage, ...] = ()
    waits: tuple[WaitSample, ...] = ()
    """The last cold starts per pool and zone (their medians go to the hub)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Profiles:
    """Everything an admin configures, validated and resolved."""

    pools: Mapping[str, Pool]
    sizes: tuple[Size, ...]
    admin_groups: tuple[str, ...] = ("jupyter-admins",)
    user_groups: tuple[str, ...] = ()
    """Groups whose members may log in (besides admins)."""
    dask: DaskSettings = DaskSettings(scheduler_pool=None)
    warm: WarmSettings = WarmSettings()
    cost: CostSettings = CostSettings()
    budgets: tuple[GroupBudget, ...] = ()
    homes: HomeSettings = HomeSettings()
    culling: CullSettings = CullSettings()
    data: DataSettings = DataSettings()
    """S3 buckets and shared file systems per group."""
    sizing: SizingSettings = SizingSettings()
    catalog: Catalog
    """The instance facts in force: the catalogue the profiles were loaded with,
    with the measured capacities of :attr:`sizing` applied. Pools' requests come
    from it; read instance facts here, never re-apply ``sizing`` to a catalogue."""
    sources: tuple[str, ...] = field(default=())
    """Files the profiles were read from, in merge order."""
    digest: str = ""
    """Hash of the files' contents; changes when any file changes."""

    def size(self, slug: str) -> Size | None:
        """Return the size with this slug, if any."""
        return next((s for s in self.sizes if s.slug == slug), None)

    def pool_of(self, size: Size) -> Pool:
        """Return the pool a size runs on (always present after validation)."""
        return self.pools[size.pool]

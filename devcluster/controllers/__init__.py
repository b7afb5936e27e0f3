"""devcluster's control plane: the loops that act on the store and on moto.

- ``manager``: starts and stops every loop, and injects faults (spot
  interruptions, spot capacity, node loss).
- ``loops``: the loop machinery and Event sources shared by every controller.
- ``predicates`` (node and pod matching rules) and ``nodes`` (the Node an EC2
  instance turns into): shared by the controllers below.
- ``scheduler``: kube-scheduler (pure decisions, and the loop acting on them).
- ``autoscaler``: Cluster Autoscaler over moto Auto Scaling groups (pure
  decisions, the groups as CA reads them, and the loop).
- ``volumes``: the PV and attach/detach controllers, the EBS rules moto lacks
  and the EBS CSI driver's work, and snapshot contents.
- ``workloads``: the Deployment and ReplicaSet controllers; ``endpoints``: the
  EndpointSlice and Endpoints controllers (which pods serve a Service). These
  need no cloud: a cluster without moto runs them too.
"""

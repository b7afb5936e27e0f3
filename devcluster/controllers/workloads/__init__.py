"""The apps/v1 controllers: Deployments and ReplicaSets.

- ``replicasets``: the ReplicaSet controller's decisions (which pods to create,
  which to delete first, adoption, status). Pure.
- ``rollouts``: the Deployment controller's decisions (the ReplicaSet of a
  template and its pod-template-hash, revisions, RollingUpdate and Recreate
  steps, history). Pure.
- ``progress``: the Deployment's status and conditions, as ``kubectl rollout
  status`` reads them. Pure.
- ``loop``: the two controllers acting on the store (creating, scaling and
  deleting ReplicaSets and pods, adopting orphans, Events, status).
"""

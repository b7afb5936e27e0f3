"""kube-scheduler.

- ``decisions``: where a pod goes and why it cannot go anywhere (pure).
- ``loop``: the scheduler loop acting on them (binding, FailedScheduling,
  preemption, WaitForFirstConsumer claims).
"""

"""kube-scheduler: where a pod goes (``decisions``) and the loop that binds it."""

"""The kubelet: runs the pods bound to nodes as local processes."""

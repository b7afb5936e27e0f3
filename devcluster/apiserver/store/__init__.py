"""The object store of the Kubernetes API emulator (one ``Store`` per cluster)."""

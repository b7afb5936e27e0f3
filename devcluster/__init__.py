"""devcluster: a local stand-in for an EKS cluster, for tests, benchmarks and the demo.

It serves a Kubernetes API over HTTP (on loopback), schedules pods like
kube-scheduler, scales moto Auto Scaling groups like Cluster Autoscaler and runs
pods' commands as local processes like a kubelet. wbspawner never imports it.
"""

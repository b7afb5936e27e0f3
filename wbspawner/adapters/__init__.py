"""The only code that talks to AWS, Kubernetes and the hub API."""

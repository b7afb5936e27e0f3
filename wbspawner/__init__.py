"""wbspawner: a JupyterHub distribution for data-science teams on AWS EKS."""

__version__ = "0.1.0"

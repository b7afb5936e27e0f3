"""Volumes: the PV and attach/detach loop, EBS rules and driver, snapshot contents."""

"""Cluster Autoscaler: pure decisions, the groups as CA reads them, the loop."""

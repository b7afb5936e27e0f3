"""Volumes: the PV and attach/detach loop, claim binding, EBS rules, snapshots.

- ``loop``: the PV controller and the attach/detach controller.
- ``binding``: binding a claim and a volume; the EBS CSI provisioner.
- ``ebs``: the EBS rules moto lacks, and the EBS CSI driver's work.
- ``snapshots``: a snapshot copies its volume's files; a restored volume gets them.
"""

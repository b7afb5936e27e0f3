"""The admin's profiles: files → YAML → schema → merge → checks → model."""

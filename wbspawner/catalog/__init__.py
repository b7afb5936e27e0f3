"""The instance catalogue: EC2 facts, node sizing, prices, refresh from EC2."""

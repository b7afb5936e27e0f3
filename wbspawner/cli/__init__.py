"""The ``wbspawner`` admin command: parsing and output only."""

"""What wbspawner costs: estimates, AWS budget alarms and per-user accounting.

- :mod:`wbspawner.costs.scenario`: usage scenarios read from YAML (pure parsing).
- :mod:`wbspawner.costs.estimate`: monthly and yearly estimates (pure).
- :mod:`wbspawner.costs.spot`: spot prices in force now, from EC2 (thin wrapper
  over :mod:`wbspawner.adapters.aws`).
- :mod:`wbspawner.costs.alarm`: an AWS Budget with e-mail alarms (thin wrapper
  over :mod:`wbspawner.adapters.aws`).
- :mod:`wbspawner.costs.accounting`: starts and stops recorded with their price,
  and reports from them (SQLAlchemy).

Prices always come from :mod:`wbspawner.catalog.pricing`.
"""

from __future__ import annotations

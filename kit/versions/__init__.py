"""Versions of the deployed model: store.py (numbered versions, the atomic `models/current` switch, history,
rollback), register.py (the first version, from a `kit run` workdir), gate.py (the promotion gate: paired
bootstrap on the new documents' and the frozen questions)."""
from .gate import GateRule, decide
from .store import Store, Version

__all__ = ["GateRule", "Store", "Version", "decide"]

"""Game events: the GameEvent contract, the dedupe ledger and the per-batch store, player totals."""

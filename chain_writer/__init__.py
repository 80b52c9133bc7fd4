"""The chain writer: executes reward commands (mint, burn) exactly once on chain."""

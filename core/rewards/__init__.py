"""Play-to-earn: the RewardCommand contract and the rules that turn events into mint/burn."""

"""get_score: the scoring formula and the score log."""

"""Battles: player profiles with ratings, queued battle requests, the engine, ratings."""

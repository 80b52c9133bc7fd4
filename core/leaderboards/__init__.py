"""Leaderboards: pure rules (``rules``), tables (``models``), the PostgreSQL ``store``."""

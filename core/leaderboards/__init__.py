"""Leaderboards: pure rules (``rules``), tables (``models``), refusals (``errors``), and in
PostgreSQL the definitions and periods (``definitions``), the score writer (``writer``), the
rank blocks (``blocks``) and the reads (``reads``)."""

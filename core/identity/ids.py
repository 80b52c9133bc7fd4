"""The shapes of the platform's ids, in one place: games, players and app users.

Players and app users share one shape, so that a game's player id can be linked to (or
be) an app user's id.
"""

GAME_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
PERSON_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
PLAYER_ID_PATTERN = PERSON_ID_PATTERN
USER_ID_PATTERN = PERSON_ID_PATTERN

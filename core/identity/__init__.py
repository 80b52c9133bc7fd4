"""Who is who: admin users, app users, game API keys, credential hashing."""

"""One stack per concern; ``infra/app.py`` wires them into a stage."""

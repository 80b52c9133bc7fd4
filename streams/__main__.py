"""``python -m streams worker``: create the topics, then run the Faust worker with its agents."""

from __future__ import annotations

from core.config import get_settings
from core.topics import ensure_topics


def main() -> None:
    settings = get_settings()
    ensure_topics(
        settings.kafka_bootstrap, settings.kafka_topic_partitions, settings.kafka_replication_factor
    )
    import streams.agents.lake_sink
    import streams.agents.scoring  # noqa: F401 - registers the agent on the app
    from streams.app import app

    app.main()


if __name__ == "__main__":
    main()

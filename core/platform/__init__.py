"""Platform plumbing every domain uses: settings, database, migrations, Kafka topics, probes."""

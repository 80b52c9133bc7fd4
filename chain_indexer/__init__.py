"""The reorg-safe EVM log follower: JSON-RPC in (``rpc.py``), PostgreSQL state and outbox
(``store.py``), the per-chain loop (``indexer.py``), Kafka out (``publisher.py``); run with
``python -m chain_indexer`` (the ``indexer`` service of ``stride up``)."""

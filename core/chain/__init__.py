"""The chain read side: decoded EVM logs (``contracts.py``, ``decode.py``), the reorg rules
(``reorg.py``), the indexer's and the projections' tables (``models.py``), the projections
(``projections.py``), contract facts (``facts.py``) and NFT metadata (``metadata.py``)."""

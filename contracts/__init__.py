"""Stride smart contracts: Solidity sources, offline build, artifacts, deployment, bridge relayer."""

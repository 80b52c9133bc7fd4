"""Stride smart contracts: Solidity sources, offline build, artifacts, deploy, bridge relayer."""

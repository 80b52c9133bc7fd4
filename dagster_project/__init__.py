"""Dagster definitions of the lakehouse: bronze → silver → gold → warehouse, per day."""

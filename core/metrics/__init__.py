"""Metrics and alerts: catalog, samples, the 3x-the-last-hour rule, Alertmanager delivery."""

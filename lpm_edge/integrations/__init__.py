"""Integrations with data-processing frameworks (each imports its framework only when used)."""

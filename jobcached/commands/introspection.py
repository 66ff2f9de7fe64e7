"""Introspection commands for operators: SLOWLOG and LATENCY."""

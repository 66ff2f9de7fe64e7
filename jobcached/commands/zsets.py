"""Sorted-set commands."""

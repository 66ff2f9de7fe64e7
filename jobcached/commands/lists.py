"""List commands."""

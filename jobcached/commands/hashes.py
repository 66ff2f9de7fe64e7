"""Hash commands."""

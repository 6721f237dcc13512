"""The staff JSON API of codes."""

"""The staff JSON API of villages."""

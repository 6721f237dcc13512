"""The staff JSON API of auth."""

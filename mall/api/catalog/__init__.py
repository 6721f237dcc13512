"""The staff JSON API of catalog."""

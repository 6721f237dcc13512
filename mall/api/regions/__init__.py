"""The staff JSON API of regions."""

"""The staff JSON API of points."""

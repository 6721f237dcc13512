"""The staff JSON API of subjects."""

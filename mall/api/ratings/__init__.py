"""The staff JSON API of ratings."""

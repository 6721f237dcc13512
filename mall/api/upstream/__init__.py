"""The staff JSON API of upstream."""

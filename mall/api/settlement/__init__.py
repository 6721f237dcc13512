"""The staff JSON API of settlement."""

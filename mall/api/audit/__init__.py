"""The staff JSON API of audit."""

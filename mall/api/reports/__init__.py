"""The staff JSON API of reports."""

"""The staff JSON API of partners."""

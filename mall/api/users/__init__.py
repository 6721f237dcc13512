"""The staff JSON API of users."""

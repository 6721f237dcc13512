"""Credit Mall: the core domain and its HTTP API."""

from mall.app import create_app

__all__ = ["create_app"]

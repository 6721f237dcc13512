"""The farmer app's reservations: the /api/v1/me/reservations API and the /m/reservations pages."""

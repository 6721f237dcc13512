"""Authentication: farmer and staff logins, JWT access and refresh tokens, lockout."""

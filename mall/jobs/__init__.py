"""Scheduled work: one command, safe from cron every few minutes, twice at once, or late."""

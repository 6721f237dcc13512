"""The append-only audit log of every state-changing admin action and every reveal."""

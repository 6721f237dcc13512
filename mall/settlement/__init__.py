"""Settlement with partners: daily statements, closing, payout and reconciliation."""

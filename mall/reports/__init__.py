"""Reports for the programme's managers, computed from the ledger by set-based SQL."""

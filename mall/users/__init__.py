"""Staff accounts and roles: county admin, township admin, village clerk, auditor, cashier."""

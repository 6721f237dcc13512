"""A partner's business days and their statements: which are closed, where a late booking goes."""

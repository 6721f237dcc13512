"""Catalogue goods: what a partner gives for credit points, at what settlement price."""

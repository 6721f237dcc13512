"""POS integration: the v1 terminal API, the cashier web terminal and a reference client.

This package translates terminal protocols into calls of `mall` services and holds no
business rules of its own.
"""

"""Payments at the till: integrity-money discounts and points goods, two-phase, refundable."""

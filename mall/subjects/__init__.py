"""Credit subjects: households now; business entities, village collectives and villages later.

One table holds every kind so wallets, codes and ratings attach to a subject, not a household.
"""

"""Credit points: earning rules, events, import batches with maker-checker approval, expiry."""

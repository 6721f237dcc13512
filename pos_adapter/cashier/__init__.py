"""The cashier web terminal at /cashier: a till in the browser for shops without POS software."""

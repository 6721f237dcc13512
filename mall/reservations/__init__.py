"""Online reservation of points goods with pickup at the shop (预约兑换, 到店取货).

A household reserves catalogue goods at a partner: the points are held (a ledger hold on its
points wallet) and the stock taken out of what is on sale (the reservation lines record how
much). At the till the cashier reads the pickup code; the pickup becomes a completed payment
of kind `pickup` whose points entry captures the hold, so settlement counts it exactly like a
till redemption. Cancel or expiry releases the hold and puts the stock back, exactly once.
"""

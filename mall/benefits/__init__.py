"""The benefit list (信用惠民清单): what a household's grade is worth at each partner.

Services: `applicable_benefits` (what the till and the farmer see) and `record_benefit_use`
(a cashier grants one, enforcing level, partner and per-household limits).
"""

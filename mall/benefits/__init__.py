"""The benefit list (信用惠民清单): what a household's grade is worth at each partner.

Services: `applicable_benefits` (what the till and the farmer see), `grant_benefit` (a till
grants one on a scanned code: a card needs the household PIN, as a payment does) and
`record_benefit_use` (enforcing level, partner and per-household limits; the use's value
computed from the benefit's terms on the bill the till reports).
"""

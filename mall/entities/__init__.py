"""Collective credit subjects (村集体, 新型经营主体): their profiles, enrolment and wallets."""

"""Staff accounts: creation within the creator's scope and roles, deactivation; audited. (Who a
staff user is, what they may see and do: mall.users.)"""

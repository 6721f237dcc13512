"""The ledger: one double-entry book for credit points (POINTS) and integrity money (CNY, fen).

Other domains post through these functions only; see docs/ledger.md for the model.
"""

from mall.ledger.accounts import (
    Wallets,
    household_wallet,
    household_wallets,
    partner_payable,
    system_account,
    village_reward_account,
)
from mall.ledger.holds import capture_hold, expire_holds, place_hold, void_hold
from mall.ledger.posting import (
    ENTRY_KINDS,
    EntrySpec,
    Leg,
    PostedEntry,
    Source,
    leg,
    post_entries,
    post_entry,
    reverse_entry,
)
from mall.ledger.queries import Balance, HistoryPage, account_history, balance, wallet_balances
from mall.ledger.verify import VerifyReport, verify_ledger

__all__ = [
    "ENTRY_KINDS",
    "Balance",
    "EntrySpec",
    "HistoryPage",
    "Leg",
    "PostedEntry",
    "Source",
    "VerifyReport",
    "Wallets",
    "account_history",
    "balance",
    "capture_hold",
    "expire_holds",
    "household_wallet",
    "household_wallets",
    "leg",
    "partner_payable",
    "place_hold",
    "post_entries",
    "post_entry",
    "reverse_entry",
    "system_account",
    "verify_ledger",
    "village_reward_account",
    "void_hold",
    "wallet_balances",
]

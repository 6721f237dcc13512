"""Credit codes (信用码): signing keys, signed codes, integrity cards, card PINs, QR images."""

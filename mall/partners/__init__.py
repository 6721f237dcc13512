"""Partners (credit supermarkets, shops, hospitals, scenic spots...) and their terminals."""

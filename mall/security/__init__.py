"""Protection of personal data and credentials: encryption, blind indexes, masking, hashing."""

"""Credit villages (信用村): the application workflow and plaque, and village assessment with
rewards paid to the village collective."""

"""Ratings: schemes and levels, the rating lifecycle, the civility review, integrity money."""

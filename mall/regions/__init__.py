"""Regions: county, township, village; settings inherited downward."""

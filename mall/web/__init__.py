"""The composition root: the app factory, its blueprints and its command line. Imports every
channel; nothing imports it but the entry points (wsgi.py, tests, bench)."""

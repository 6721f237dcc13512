"""What a household sees of itself: the farmer API (/api/v1/me...) and the mobile pages (/m/).

Both call the reads in `services`; a household only ever reaches its own data, because
every read takes the authenticated subject, never an id from the request.
"""

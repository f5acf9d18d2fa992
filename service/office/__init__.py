"""Office-side use cases, one module per topic; service.web.office mirrors the
names: accounts (accounts, login, sessions, API tokens), schedule (the day, a
booking's history, status changes, booking for a citizen), changes (hours,
closures and service settings with the bookings they strand), feed (the ICS
feed), stats (weekly statistics).
"""

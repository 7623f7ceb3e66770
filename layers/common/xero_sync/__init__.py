"""The shared package of the Xero integration: config, observability, models, data access, queue and logic.

Shipped to every function as the `common` Lambda layer (importable from /opt/python).
"""

"""API request and response schemas, one module per area, in families.

Each area has ``XCreate`` / ``XUpdate`` (write bodies: unknown fields are
refused), ``XPublic`` (what a client sees) and ``XList`` (a page of them).
"""

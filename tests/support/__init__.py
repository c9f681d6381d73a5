"""Helpers that tests and benchmarks share: a Dovecot launcher, a PostgreSQL cluster,
free ports, message factories. Plain Python: importing them never needs pytest.
"""

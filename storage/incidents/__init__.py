"""Declared incidents: their tickets, their notices and who received each notice.

Imports only storage's own modules and the standard library (never nlp or gateway):
callers hand in the keys and facts they computed.
"""

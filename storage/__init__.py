"""Durable state of supportgate: tables, engine, queue transitions, audit.

A leaf package: it imports nothing else of ours, so the gateway and the review UI can
share the database and nothing more.
"""

"""Mail in: the SMTP front door, IMAP pollers, durable ingest and MIME parsing.

May import `gateway.config`, `gateway.headers`, `storage` and `nlp.types`; never
`gateway.conversation`, `gateway.outbound` or `gateway.cli`.
"""

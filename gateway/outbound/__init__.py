"""Mail out: the sender runner and the SMTP relay client, behind a human release.

May import `gateway.config`, `gateway.headers`, `gateway.runner`, `storage` and
`gateway.inbound.imap.auth` (Sent copies); never `gateway.conversation` or `gateway.cli`.
"""

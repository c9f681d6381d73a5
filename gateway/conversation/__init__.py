"""What happens to stored mail: screening, threading, and the analysis pipeline.

May import `gateway.inbound` (parse), `gateway.config`, `gateway.headers`,
`gateway.runner`, `storage` and `nlp`; never `gateway.outbound` or `gateway.cli`.
"""

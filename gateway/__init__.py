"""Mail in and out: front doors, parsing, ingest, runners, sender, config and the CLI.

This is the composition root: it may import `storage` and `nlp`; they never import it.
"""

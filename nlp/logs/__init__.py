"""Log attachments: capped decoding of archives, then mining events, templates and
failure signatures. Pure: imports `nlp.types` and `nlp.text` only.
"""

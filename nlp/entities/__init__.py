"""Entity extraction: compiled regex rules over the text, mapped to labelled spans.

Pure: imports `nlp.types` only. `extract` is the entry point; `rules`/`words` hold the
tables, `validate`/`resolve` the checks, `forwarded` and `components` helpers for callers.
"""

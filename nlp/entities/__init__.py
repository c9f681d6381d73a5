"""Entity extraction: compiled regex rules over the text, mapped to labelled spans.

Pure: imports `nlp.types` only.
"""

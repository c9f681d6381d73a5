"""From analysis to a reply: knowledge-base retrieval and draft composition.

Pure: imports `nlp.types` and the rest of `nlp`; never storage or gateway.
"""

"""The command line: one module per command group, and the demo.

The composition root of the composition root: it may import everything in `gateway`,
`storage` and `nlp`; nothing in `gateway` imports it.
"""

"""Pure analysis of support mail: ParsedMessage in, frozen dataclasses out.

Nothing here does I/O on the network or imports the rest of supportgate.
"""

"""Who has a ticket, whether it waits on us, and how long the customer has waited.

Imports only storage's own modules and the standard library; the gateway builds the
`Desk` (business hours, response targets) from config and hands it in.
"""

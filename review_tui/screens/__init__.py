"""Screens of the review UI: queue, ticket, bulk review, problems, dialogs and help."""

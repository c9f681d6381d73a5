"""IMAP: logging in, the lean FETCH reader, one sync cycle, checkpoints, the poller.

Part of `gateway.inbound`; `gateway.outbound` may use `auth` to append the Sent copy.
"""

"""`serve` as a small supervisor: the front door in its own process, the runners in
child processes it starts, watches and restarts (`supervisor`), and what a child does
to stay second to the front door and to end with its parent (`child`).

It knows processes, not what they run: the command line (gateway.cli.serve) says
which children to start.
"""

"""The ``agi-server`` commands, one module per topic.

``agi_server.cli`` puts them into the click group, one ``add_command`` line
each. Every command parses its arguments, calls a library function and
prints the result; ``tables`` is the CLI's table layout, shared by the
commands that print tables.
"""

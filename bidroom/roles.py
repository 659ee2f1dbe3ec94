"""The roles a session can hold: what a token speaks for (bidroom.tokens) and what the command
line offers (bidroom.cli, which must not import the token machinery to build its arguments)."""

ROLES = frozenset({"chair", "bidder", "expert", "supervisor", "custodian", "public"})

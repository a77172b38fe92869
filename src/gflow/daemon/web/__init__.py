"""The dashboard: its TCP routes (`[web] listen`), browser sessions, and static files.

A browser is a Unix user only through a session that the Unix socket issued (a one-time
token from `gflowd web`); without one it sees the public queue and GPUs, read-only.
"""

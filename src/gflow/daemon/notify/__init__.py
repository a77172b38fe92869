"""Notifications: which deliveries each committed event owes (router.py, inside its
transaction), how they are sent (send.py: webhooks, e-mail) and the worker that sends them
once, with backoff, off the loop's critical path (worker.py)."""

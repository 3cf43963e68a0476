"""The platform side's pure protocol core: meta codec, payload validation, replies, effects.

No I/O here: sockets and threads live in `receiver/` and `sender/`.
"""

"""Installed as `bounceback_docs`, so the wheel carries PROTOCOL.md (`bounceback protocol`).

Failure messages quote "PROTOCOL.md section N"; an installed user reads that section with
`bounceback protocol N`. Found through importlib.resources by simulator/esp/catalog.py.
"""

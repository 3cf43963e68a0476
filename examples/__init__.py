"""Installed as `bounceback_examples`: the wheel carries these provider files as package data.

An installed user has no checkout; `bounceback scenarios show examples/providers > providers.toml`
gives the copy to edit. Found through importlib.resources by simulator/esp/catalog.py.
"""

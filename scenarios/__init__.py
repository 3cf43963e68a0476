"""Installed as `bounceback_scenarios`: the TOML files here travel in the wheel as package data.

Scenarios for the fake ESP at the top, certification plans in `certification/`, the vendor profiles
the fake ESP plays in `certification/vendors/`, the SMTP settings plans send through in
`certification/providers/`. `bounceback scenarios` lists them; simulator/esp/catalog.py finds them.
"""

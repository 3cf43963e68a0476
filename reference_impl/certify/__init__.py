"""ESP vendor certification: send probes through a vendor's SMTP, record its callbacks, grade them.

`plan` loads the TOML plan, `recording` holds the capture format and the recording receiver,
`checks` grades a capture (a pure function), `report` writes HTML, JSON and JUnit XML, `run` drives
a live run and `cli` is the `bounceback certify` command.
"""

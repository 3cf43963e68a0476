"""The fake ESP: accepts SMTP mail and posts v2 callbacks, driven by scenarios."""

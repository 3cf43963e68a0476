"""The fake ESP: SMTP in (aiosmtpd), scenario-driven outcomes, spool, callbacks out."""

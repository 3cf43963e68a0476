"""The platform's side of the v2 SMTP callback protocol: meta codec, callback receiver, sender."""

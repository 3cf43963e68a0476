"""The reference callback receiver: Flask app, store, projection, server, OpenAPI, CLI."""

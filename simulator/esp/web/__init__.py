"""The fake ESP's HTTP side: a Flask app (read API, dashboard, runtime controls) on waitress.

`create_app(WebConfig(...))` builds it from blueprints (`read.py`, `dashboard.py`,
`control.py`); `WebServer` serves it on its own thread. The app's guard (`guard.py`) asks for the
read token and refuses cross-site control requests. The dashboard's templates and script ship in
this package (`templates/`, `static/`), so it needs no build step.
"""

"""The receiver's live dashboard at `/`: the callbacks as they arrive, each one opened, profiles,
system events, campaign and label reports, and the unattributed events.

Server-rendered pages (`pages.py`, Jinja2 templates) with a little plain JavaScript for the live
feed (`stream.py`, server-sent events) and the reset button; the charts are SVG drawn from
`charts.py`. Everything shown is read through the same store functions the read API answers with.
"""

from reference_impl.receiver.dashboard.pages import dashboard_blueprint

__all__ = ["dashboard_blueprint"]

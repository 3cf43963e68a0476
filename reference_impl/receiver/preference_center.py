"""The preference center route (`/preferences?meta=`): the page and its one-click unsubscribe.

The pages and the unsubscribe body are built by `preferences.py`; this blueprint decides which
one a request gets and logs the unsubscribe as a callback, so it is projected like any other.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, request

from reference_impl.protocol.meta import MetaError, parse_meta
from reference_impl.protocol.payload import read_batch
from reference_impl.receiver import preferences
from reference_impl.receiver.responses import JSON_TYPE
from reference_impl.receiver.store import RawCallback, Store

HTML_TYPE = "text/html"

log = logging.getLogger("bounceback.receiver")


def preference_blueprint(store: Store) -> Blueprint:
    """The preference center over `store`."""
    blueprint = Blueprint("preference_center", __name__)

    @blueprint.route("/preferences", methods=["GET", "POST"])
    def preference_center() -> Response:
        meta_value = request.args.get("meta", "")
        try:
            meta = parse_meta(meta_value)
        except MetaError:
            return Response(preferences.invalid_page(), status=400, mimetype=HTML_TYPE)
        body = preferences.unsubscribe_body(meta_value, meta)
        batch = read_batch(body)
        if not batch.accepted:
            # Logging it anyway would store a callback with no event and unsubscribe nobody.
            log.warning("preference link for %r unusable: %s", meta.email, batch.unprocessed)
            page = preferences.invalid_page(preferences.UNUSABLE_LINK)
            return Response(page, status=400, mimetype=HTML_TYPE)
        if request.method == "POST":
            raw = RawCallback(body, request.remote_addr, JSON_TYPE, time.time())
            store.record_callback(raw, batch)
        profile = store.profile(meta.email)
        subscribed = profile["subscribed"] if profile else True
        return Response(preferences.page(meta.email, subscribed), mimetype=HTML_TYPE)

    return blueprint

"""The preference center route (`/preferences?meta=&sig=`): the page and its one-click unsubscribe.

The pages and the unsubscribe body are in `preferences.py`, the cross-site rule in `access.py`;
this blueprint decides which answer a request gets, verifies the link's signature
(`protocol.links`) before it reads the store or writes to it, and logs the unsubscribe as a
callback, so it is projected like any other.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, request

from reference_impl.protocol.links import SIGNATURE_PARAM, LinkKey, LinkVerdict, verify_meta
from reference_impl.protocol.meta import MetaError, parse_meta
from reference_impl.protocol.payload import read_batch
from reference_impl.receiver import preferences
from reference_impl.receiver.access import cross_site
from reference_impl.receiver.responses import JSON_TYPE
from reference_impl.receiver.store import RawCallback, Store

HTML_TYPE = "text/html"

log = logging.getLogger("bounceback.receiver")


def _page(text: str, status: int) -> Response:
    return Response(preferences.invalid_page(text), status=status, mimetype=HTML_TYPE)


def preference_blueprint(store: Store, link_keys: tuple[LinkKey, ...] = ()) -> Blueprint:
    """The preference center over `store`, accepting links signed with any of `link_keys`."""
    blueprint = Blueprint("preference_center", __name__)

    @blueprint.after_request
    def not_framed(response: Response) -> Response:
        response.headers.update(preferences.FRAME_HEADERS)
        return response

    @blueprint.route("/preferences", methods=["GET", "POST"])
    def preference_center() -> Response:
        meta_value = request.args.get("meta", "")
        try:
            meta = parse_meta(meta_value)
        except MetaError:
            return _page(preferences.INVALID_LINK, 400)
        if not link_keys:
            log.warning("preference link refused: this receiver has no --link-key")
            return _page(preferences.NO_LINK_KEYS, 403)
        verdict = verify_meta(meta_value, request.args.get(SIGNATURE_PARAM), link_keys)
        if verdict is not LinkVerdict.VALID:
            log.warning("preference link for %r refused: %s", meta.email, verdict.value)
            return _page(preferences.UNVERIFIED_LINK, 403)
        if request.method == "POST" and cross_site(
            request.headers.get("Sec-Fetch-Site"), request.headers.get("Origin"), request.host
        ):
            log.warning("preference post for %r refused: posted from another site", meta.email)
            return _page(preferences.CROSS_SITE, 403)
        body = preferences.unsubscribe_body(meta_value, meta)
        batch = read_batch(body)
        if not batch.accepted:
            # Logging it anyway would store a callback with no event and unsubscribe nobody.
            log.warning("preference link for %r unusable: %s", meta.email, batch.unprocessed)
            return _page(preferences.UNUSABLE_LINK, 400)
        if request.method == "POST" and not preferences.is_one_click(
            request.form.getlist(preferences.ONE_CLICK_FIELD)
        ):
            log.warning("preference post for %r refused: not a one-click body", meta.email)
            return _page(preferences.NOT_ONE_CLICK, 400)
        if request.method == "POST":
            raw = RawCallback(body, request.remote_addr, JSON_TYPE, time.time())
            store.record_callback(raw, batch)
        profile = store.profile(meta.email)
        subscribed = profile["subscribed"] if profile else True
        return Response(preferences.page(meta.email, subscribed), mimetype=HTML_TYPE)

    return blueprint

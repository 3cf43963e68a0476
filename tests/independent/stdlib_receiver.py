"""Independent callback receiver (stdlib only), written from spec/PROTOCOL.md sections 3-5 alone.
Usage: python stdlib_receiver.py --port 0 [--bug NAME]"""
import argparse, json, math, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs

BUGS = ["wrong-total", "drop-unprocessed", "reorder-unprocessed", "accept-v1", "no-limit", "500-on-bad-json",
        "mangle-meta-echo", "soft-unsubscribes", "rejects-unknown-keys"]
TYPES = {"failed": {"hard_bounce", "soft_bounce", "spam", "unsubscribed", "bounce"}, "success": {"delivered"}}
UNSUB = {"hard_bounce", "spam", "unsubscribed", "bounce"}
KNOWN_KEYS = {"type", "email", "meta", "description"}
BAD_REQ, UNREADABLE = "Bad request. Some mandatory parameters were missing.", "Exception occurred while reading input stream"
BUG, LOCK, SEEN, UNSUBSCRIBED = None, threading.Lock(), set(), set()
if hasattr(sys, "set_int_max_str_digits"):
    sys.set_int_max_str_digits(0)  # a long integer literal is still valid JSON

def _no_constant(name):
    raise ValueError("not JSON: " + name)  # NaN, Infinity, -Infinity

def finite(v):  # 1e400 parses to inf; echo it as null, as a stock JS JSON.stringify would
    if isinstance(v, float) and not math.isfinite(v): return None
    if isinstance(v, dict): return {k: finite(x) for k, x in v.items()}
    if isinstance(v, list): return [finite(x) for x in v]
    return v

def valid_email(s):
    if not isinstance(s, str) or not s: return False
    quoted = escaped = False; ats = []
    for i, c in enumerate(s):
        if ord(c) < 32 or ord(c) == 127 or (c == " " and not quoted): return False
        if quoted:
            if escaped: escaped = False
            elif c == "\\": escaped = True
            elif c == '"': quoted = False
        elif c == '"': quoted = True
        elif c == "@": ats.append(i)
    return not quoted and len(ats) == 1 and 0 < ats[0] < len(s) - 1

def norm(addr):  # the domain is case-insensitive, the local part is kept as is
    local, _, dom = addr.rpartition("@")
    return local + "@" + dom.lower() if local else addr

def check(group, ev):  # order: meta, email, type
    if not isinstance(ev.get("meta"), str) or not ev["meta"]: return "invalid meta"
    if not valid_email(ev.get("email")): return "email address is malformed"
    if not isinstance(ev.get("type"), str) or ev["type"] not in TYPES[group]: return "Could not map event to any bounce type"
    if BUG == "rejects-unknown-keys" and set(ev) - KNOWN_KEYS: return "unknown key"
    return None

def apply(ev):
    with LOCK:
        key = (ev["meta"], ev["type"])
        if key in SEEN: return  # an ESP retry: side effects once
        SEEN.add(key)
        if ev["type"] in UNSUB or (BUG == "soft-unsubscribes" and ev["type"] == "soft_bounce"):
            first = ev["meta"].split("|", 1)[0] if "|" in ev["meta"] else ""
            UNSUBSCRIBED.add(norm(first or ev["email"]))

def process(raw):
    """Returns (status, body dict)."""
    def err(code, msg): return code, {"error": msg, "TOTAL_EVENTS": 0, "PROCESSED_EVENTS": 0, "UNPROCESSED_EVENTS": []}
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return err(500 if BUG == "500-on-bad-json" else 400, UNREADABLE)
    versions = ("v2", "v1") if BUG == "accept-v1" else ("v2",)
    if not isinstance(doc, dict) or doc.get("version") not in versions or not isinstance(doc.get("events"), dict):
        return err(400, BAD_REQ)
    evs = doc["events"]
    if not isinstance(evs.get("failed"), list) or ("success" in evs and not isinstance(evs["success"], list)):
        return err(400, BAD_REQ)
    groups = [(g, evs[g]) for g in evs if g in TYPES]  # body order
    if any(not isinstance(e, dict) for _, lst in groups for e in lst):
        return err(400, BAD_REQ)  # "the payload format is incorrect"
    total = sum(len(lst) for _, lst in groups)
    if total > 1000 and BUG != "no-limit":
        return err(400, "More than allowed events received.")
    unprocessed = []
    for g, lst in groups:
        for ev in lst:
            why = check(g, ev)
            if why is None:
                apply(ev); continue
            echo = dict(ev)
            if BUG == "mangle-meta-echo" and isinstance(echo.get("meta"), str) and echo["meta"].endswith("|"):
                echo["meta"] = echo["meta"][:-1]
            echo["errorDescription"] = why
            unprocessed.append(echo)
    n_bad = len(unprocessed)
    if BUG == "reorder-unprocessed": unprocessed.reverse()
    if BUG == "drop-unprocessed": unprocessed = []
    body = {"TOTAL_EVENTS": total + (1 if BUG == "wrong-total" else 0), "PROCESSED_EVENTS": total - n_bad,
            "UNPROCESSED_EVENTS": unprocessed}
    if n_bad: body = {"error": f"{n_bad} event(s) failed to process", **body}
    return 200, body

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a): pass

    def __getattr__(self, name):  # every method (GET, POST, PUT, HEAD, ...) goes through route()
        if name.startswith("do_"): return self.route
        raise AttributeError(name)

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline().strip(): pass  # trailers
                    return data
                data += self.rfile.read(size); self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send(self, code, obj, extra=()):
        data = json.dumps(finite(obj), allow_nan=False).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json"); self.send_header("Content-Length", str(len(data)))
        for k, v in extra: self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD": self.wfile.write(data)

    def route(self):
        url = urlsplit(self.path)
        try:
            raw = self.read_body()
        except Exception:
            self.close_connection = True
            return self.send(400, process(b"\xff")[1])  # unreadable stream
        try:
            if url.path == "/callback":
                if self.command != "POST": return self.send(405, {"error": "Method not allowed"}, [("Allow", "POST")])
                return self.send(*process(raw))
            if url.path == "/state/profile":
                if self.command not in ("GET", "HEAD"): return self.send(405, {"error": "Method not allowed"}, [("Allow", "GET")])
                email = parse_qs(url.query).get("email", [""])[0]
                if not email: return self.send(400, {"error": "email query parameter is required"})
                with LOCK: unsub = norm(email) in UNSUBSCRIBED
                return self.send(200, {"email": email, "subscribed": not unsub})
            return self.send(404, {"error": "Not found", "path": url.path})
        except Exception:
            return self.send(500, {"error": "Server error", "TOTAL_EVENTS": 0, "PROCESSED_EVENTS": 0, "UNPROCESSED_EVENTS": []})

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bug", choices=BUGS)
    opts = ap.parse_args(); BUG = opts.bug
    srv = ThreadingHTTPServer(("127.0.0.1", opts.port), Handler)
    print(f"LISTENING http://127.0.0.1:{srv.server_address[1]}", flush=True)
    try: srv.serve_forever()
    except KeyboardInterrupt: pass

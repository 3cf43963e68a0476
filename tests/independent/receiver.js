// Independent callback receiver (Node built-ins only), written from spec/PROTOCOL.md sections 3-5 alone.
// Usage: node receiver.js --port 0 [--bug NAME]
'use strict';
const http = require('http');

const BUGS = ['wrong-total', 'drop-unprocessed', 'reorder-unprocessed', 'accept-v1', 'no-limit', '500-on-bad-json',
  'mangle-meta-echo', 'soft-unsubscribes', 'rejects-unknown-keys'];
const TYPES = { failed: new Set(['hard_bounce', 'soft_bounce', 'spam', 'unsubscribed', 'bounce']), success: new Set(['delivered']) };
const UNSUB = new Set(['hard_bounce', 'spam', 'unsubscribed', 'bounce']);
const KNOWN_KEYS = new Set(['type', 'email', 'meta', 'description']);
const BAD_REQ = 'Bad request. Some mandatory parameters were missing.';
const UNREADABLE = 'Exception occurred while reading input stream';

function args(argv) {
  const out = { port: 0, bug: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--port') out.port = Number(argv[++i]);
    else if (argv[i] === '--bug') out.bug = argv[++i];
    else { console.error(`unknown argument ${argv[i]}`); process.exit(2); }
  }
  if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) { console.error('bad --port'); process.exit(2); }
  if (out.bug !== null && !BUGS.includes(out.bug)) { console.error(`unknown --bug; one of ${BUGS.join(', ')}`); process.exit(2); }
  return out;
}
const { port, bug: BUG } = args(process.argv.slice(2));
const seen = new Set();          // JSON [meta, type] of events already applied
const unsubscribed = new Set();  // normalised addresses

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const has = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

function validEmail(s) {
  if (typeof s !== 'string' || s.length === 0) return false;
  let quoted = false, escaped = false; const ats = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i], code = s.charCodeAt(i);
    if (code < 32 || code === 127 || (c === ' ' && !quoted)) return false;
    if (quoted) {
      if (escaped) escaped = false; else if (c === '\\') escaped = true; else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true; else if (c === '@') ats.push(i);
  }
  return !quoted && ats.length === 1 && ats[0] > 0 && ats[0] < s.length - 1;
}

function norm(addr) { // domain is case-insensitive, local part kept as is
  const at = addr.lastIndexOf('@');
  return at > 0 ? addr.slice(0, at + 1) + addr.slice(at + 1).toLowerCase() : addr;
}

function check(group, ev) { // order: type, email, meta
  if (typeof ev.type !== 'string' || !TYPES[group].has(ev.type)) return 'Could not map event to any bounce type';
  if (!validEmail(ev.email)) return 'Invalid email address';
  if (typeof ev.meta !== 'string' || ev.meta.length === 0) return 'invalid meta';
  if (BUG === 'rejects-unknown-keys' && Object.keys(ev).some((k) => !KNOWN_KEYS.has(k))) return 'unknown key';
  return null;
}

function apply(ev) {
  const key = JSON.stringify([ev.meta, ev.type]);
  if (seen.has(key)) return; // an ESP retry: side effects once
  seen.add(key);
  if (UNSUB.has(ev.type) || (BUG === 'soft-unsubscribes' && ev.type === 'soft_bounce')) {
    const first = ev.meta.includes('|') ? ev.meta.split('|')[0] : '';
    unsubscribed.add(norm(first || ev.email));
  }
}

function processBody(buf) { // -> [status, body]
  const err = (code, msg) => [code, { error: msg, TOTAL_EVENTS: 0, PROCESSED_EVENTS: 0, UNPROCESSED_EVENTS: [] }];
  let doc;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf));
  } catch (e) {
    return err(BUG === '500-on-bad-json' ? 500 : 400, UNREADABLE);
  }
  const versions = BUG === 'accept-v1' ? ['v2', 'v1'] : ['v2'];
  if (!isObj(doc) || !versions.includes(doc.version) || !isObj(doc.events)) return err(400, BAD_REQ);
  const evs = doc.events;
  if (!Array.isArray(evs.failed) || (has(evs, 'success') && !Array.isArray(evs.success))) return err(400, BAD_REQ);
  const groups = Object.keys(evs).filter((g) => has(TYPES, g)).map((g) => [g, evs[g]]); // body order
  if (groups.some(([, list]) => list.some((e) => !isObj(e)))) return err(400, BAD_REQ);
  const total = groups.reduce((n, [, list]) => n + list.length, 0);
  if (total > 1000 && BUG !== 'no-limit') return err(400, 'More than allowed events received.');
  let unprocessed = [];
  for (const [g, list] of groups) {
    for (const ev of list) {
      const why = check(g, ev);
      if (why === null) { apply(ev); continue; }
      const echo = { ...ev };
      if (BUG === 'mangle-meta-echo' && typeof echo.meta === 'string' && echo.meta.endsWith('|')) echo.meta = echo.meta.slice(0, -1);
      echo.errorDescription = why;
      unprocessed.push(echo);
    }
  }
  const nBad = unprocessed.length;
  if (BUG === 'reorder-unprocessed') unprocessed.reverse();
  if (BUG === 'drop-unprocessed') unprocessed = [];
  let body = { TOTAL_EVENTS: total + (BUG === 'wrong-total' ? 1 : 0), PROCESSED_EVENTS: total - nBad, UNPROCESSED_EVENTS: unprocessed };
  if (nBad) body = { error: `${nBad} event(s) failed to process`, ...body };
  return [200, body];
}

function send(req, res, code, obj, extra = {}) {
  const data = Buffer.from(JSON.stringify(obj));
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': data.length, ...extra });
  res.end(req.method === 'HEAD' ? undefined : data);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('error', () => send(req, res, 400, processBody(Buffer.from([0xff]))[1]));
  req.on('end', () => {
    try {
      const url = new URL(req.url, 'http://127.0.0.1');
      if (url.pathname === '/callback') {
        if (req.method !== 'POST') return send(req, res, 405, { error: 'Method not allowed' }, { Allow: 'POST' });
        const [code, body] = processBody(Buffer.concat(chunks));
        return send(req, res, code, body);
      }
      if (url.pathname === '/state/profile') {
        if (req.method !== 'GET' && req.method !== 'HEAD') return send(req, res, 405, { error: 'Method not allowed' }, { Allow: 'GET' });
        const email = url.searchParams.get('email') || '';
        if (!email) return send(req, res, 400, { error: 'email query parameter is required' });
        return send(req, res, 200, { email, subscribed: !unsubscribed.has(norm(email)) });
      }
      return send(req, res, 404, { error: 'Not found', path: url.pathname });
    } catch (e) {
      return send(req, res, 500, { error: 'Server error', TOTAL_EVENTS: 0, PROCESSED_EVENTS: 0, UNPROCESSED_EVENTS: [] });
    }
  });
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`LISTENING http://127.0.0.1:${server.address().port}\n`);
});

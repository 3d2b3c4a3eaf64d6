#!/usr/bin/env python3
"""A callback receiver that verifies the dialer's signatures (CONTRACT.md, "Signatures").

    python3 receiver.py --port 8000 --secret whsec_... [--secret whsec_OLD...] \
        [--record events.jsonl] [--fail-first-seconds N] [--verify webhooks|x-signature|both]

Every callback is POSTed with the event as JSON and signed twice over the exact body bytes:

- `X-Signature`: lowercase hex HMAC-SHA256, key = the secret's UTF-8 bytes, message = the body.
- Standard Webhooks: `webhook-id`, `webhook-timestamp` (Unix seconds of this try) and
  `webhook-signature: v1,<base64 HMAC-SHA256>` (several, space separated, while a secret is
  being rotated), key = base64-decoded part of the secret after `whsec_`, message =
  `{webhook-id}.{webhook-timestamp}.{body}`.

`--verify webhooks` (the default) requires a valid `webhook-signature` by one of the given
secrets and a `webhook-timestamp` within `--tolerance-seconds` of now (replay protection);
`x-signature` checks only `X-Signature` (what older integrations do); `both` requires both.
Give `--secret` twice around a rotation (new and old); either is accepted.

Answers: 401 for a missing or bad signature or a stale timestamp, 400 for a body that is not a
JSON object, 503 during the first `--fail-first-seconds` (to watch the platform retry), else
200. Delivery is at least once: an `event_id` seen before is answered 200 again and recorded
with `"duplicate": true`.

`--record FILE` appends one JSON line per verified callback: the event body plus `verified`
(true), `received_at` (RFC 3339 UTC), `duplicate`, `webhook_id` and `webhook_timestamp`.
Prints `listening on http://HOST:PORT` at startup (`--port 0` picks a free port).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import sys
import threading
import time
from datetime import datetime, timezone

from flask import Flask, Response, request
from werkzeug.serving import make_server

MAX_BODY = 1024 * 1024


class Verifier:
    def __init__(self, secrets: list[str], mode: str, tolerance: int):
        if not secrets:
            raise ValueError("at least one --secret is needed")
        self.mode = mode
        self.tolerance = tolerance
        # X-Signature key: the secret text as UTF-8, whatever its form.
        self.hex_keys = [s.encode("utf-8") for s in secrets]
        # Standard Webhooks key: the base64 after `whsec_`.
        self.wh_keys = []
        for s in secrets:
            if not s.startswith("whsec_"):
                if mode != "x-signature":
                    raise ValueError("a secret must look like whsec_<base64> for --verify webhooks/both")
                continue
            try:
                self.wh_keys.append(base64.b64decode(s[len("whsec_"):], validate=True))
            except (binascii.Error, ValueError) as e:
                raise ValueError(f"secret is not whsec_<base64>: {e}") from None

    def x_signature_ok(self, body: bytes, header: str | None) -> bool:
        if not header:
            return False
        given = header.strip().lower()
        ok = False
        for key in self.hex_keys:
            expected = hmac.new(key, body, hashlib.sha256).hexdigest()
            # Every key is compared (no early exit) so timing says nothing about which matched.
            ok |= hmac.compare_digest(expected, given)
        return ok

    def webhook_ok(self, body: bytes, msg_id: str | None, ts: str | None, sig_header: str | None) -> str | None:
        """None when valid, else why not."""
        if not msg_id or not ts or not sig_header:
            return "missing webhook-id, webhook-timestamp or webhook-signature"
        try:
            ts_int = int(ts)
        except ValueError:
            return "webhook-timestamp is not an integer"
        if abs(time.time() - ts_int) > self.tolerance:
            return "webhook-timestamp outside the tolerance (stale or replayed)"
        signed = msg_id.encode("utf-8") + b"." + ts.encode("ascii") + b"." + body
        candidates = []
        for part in sig_header.split():
            version, _, sig = part.partition(",")
            if version == "v1" and sig:
                candidates.append(sig.encode("ascii", "replace"))
        ok = False
        for key in self.wh_keys:
            expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
            for sig in candidates:
                ok |= hmac.compare_digest(expected, sig)
        return None if ok else "no webhook-signature matches"

    def verify(self, body: bytes, headers) -> str | None:
        """None when the request is authentic under the chosen mode, else the reason."""
        if self.mode in ("webhooks", "both"):
            why = self.webhook_ok(
                body,
                headers.get("webhook-id"),
                headers.get("webhook-timestamp"),
                headers.get("webhook-signature"),
            )
            if why:
                return why
        if self.mode in ("x-signature", "both"):
            if not self.x_signature_ok(body, headers.get("X-Signature")):
                return "X-Signature missing or wrong"
        return None


def create_app(verifier: Verifier, record: str | None, fail_first_seconds: float, quiet: bool = False) -> Flask:
    app = Flask("dialer-callback-receiver")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    started = time.monotonic()
    lock = threading.Lock()
    seen: set[str] = set()
    stats = {"received": 0, "verified": 0, "rejected": 0, "unavailable": 0, "duplicates": 0}

    def answer(http_status: int, **body) -> Response:
        return Response(json.dumps(body), status=http_status, mimetype="application/json")

    @app.get("/healthz")
    def healthz():
        with lock:
            return answer(200, status="ok", **stats)

    @app.post("/", defaults={"path": ""})
    @app.post("/<path:path>")
    def callback(path):
        body = request.get_data(cache=False)  # the exact bytes, before any parsing
        now = datetime.now(timezone.utc)
        with lock:
            stats["received"] += 1
        if time.monotonic() - started < fail_first_seconds:
            with lock:
                stats["unavailable"] += 1
            if not quiet:
                print(f"503 (failing the first {fail_first_seconds:g}s) {request.headers.get('webhook-id')}", flush=True)
            return answer(503, status="error", message="failing on purpose (--fail-first-seconds)")
        why = verifier.verify(body, request.headers)
        if why:
            with lock:
                stats["rejected"] += 1
            print(f"401 {why}", flush=True)
            return answer(401, status="error", message=why)
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            return answer(400, status="error", message="body is not a JSON object")
        event_id = event.get("event_id") or request.headers.get("webhook-id") or ""
        with lock:
            duplicate = event_id in seen
            seen.add(event_id)
            stats["verified"] += 1
            stats["duplicates"] += int(duplicate)
            if record:
                line = {
                    **event,
                    "verified": True,
                    "received_at": now.isoformat().replace("+00:00", "Z"),
                    "duplicate": duplicate,
                    "webhook_id": request.headers.get("webhook-id"),
                    "webhook_timestamp": request.headers.get("webhook-timestamp"),
                }
                with open(record, "a", encoding="utf-8") as f:
                    f.write(json.dumps(line, separators=(",", ":")) + "\n")
        if not quiet:
            print(
                f"200 {event.get('event_type')} batch={event.get('batch_id')} "
                f"phone={event.get('phone_number')} status={event.get('call_status')} "
                f"disposition={event.get('disposition')} attempt={event.get('attempt')} "
                f"will_retry={event.get('will_retry')} seq={event.get('sequence')}"
                + (" (duplicate)" if duplicate else ""),
                flush=True,
            )
        return answer(200, status="success")

    return app


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Verify and record the dialer's signed callbacks.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0: any free port (printed)")
    p.add_argument("--secret", action="append", default=[],
                   help="the account's callback secret (whsec_...); repeat for the old and new "
                        "secret during a rotation (env DIALER_CALLBACK_SECRET, comma separated)")
    p.add_argument("--verify", choices=["webhooks", "x-signature", "both"], default="webhooks")
    p.add_argument("--tolerance-seconds", type=int, default=300,
                   help="largest |now - webhook-timestamp| accepted (default 300)")
    p.add_argument("--record", help="append one JSON line per verified callback to this file")
    p.add_argument("--fail-first-seconds", type=float, default=0.0,
                   help="answer 503 to everything for this long after start")
    p.add_argument("--quiet", action="store_true", help="print only rejections")
    args = p.parse_args(argv)
    secrets = args.secret or [s for s in os.environ.get("DIALER_CALLBACK_SECRET", "").split(",") if s]
    try:
        verifier = Verifier(secrets, args.verify, args.tolerance_seconds)
    except ValueError as e:
        p.error(str(e))
    app = create_app(verifier, args.record, args.fail_first_seconds, args.quiet)
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server(args.host, args.port, app, threaded=True)
    print(f"listening on http://{args.host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

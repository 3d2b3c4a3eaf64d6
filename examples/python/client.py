#!/usr/bin/env python3
"""Submit a batch to the dialer, dispatch it and follow it until every call has its outcome.

    python3 client.py --base-url http://127.0.0.1:8080 --api-key KEY --batch ../batch.json \
        --dispatch [--poll-seconds 2] [--timeout 600]

The batch file is a submit-batch request body (see CONTRACT.md: `batch_id`, `data` and the
optional batch settings). Batches larger than the account's `max_rows_per_request` are sent in
several requests with the same `batch_id` (a repeated row is a duplicate, never a second call,
so a request that timed out is simply sent again).

Exit codes: 0 when every call reached its final outcome, 1 on an API error (its JSON error body
is printed), 2 when --timeout passed first, 3 on a bad command line or batch file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter

import requests

API = "/api/v1"
# Call statuses that are a final outcome; `retry_wait` is not (another attempt will come).
TERMINAL = {"completed", "busy", "no_answer", "failed", "timeout", "cancelled", "skipped", "expired"}
# Batch states after which nothing changes any more.
FINISHED_BATCH = {"completed", "cancelled"}
DEFAULT_CHUNK = 1000


class ApiError(Exception):
    """An HTTP answer other than 2xx, with the API's error body."""

    def __init__(self, method: str, url: str, status: int, body):
        self.status = status
        self.body = body
        if isinstance(body, dict):
            detail = f"{body.get('code', '?')}: {body.get('message', '')}"
        else:
            detail = str(body)[:500]
        super().__init__(f"{method} {url} -> HTTP {status} {detail}")


class Client:
    def __init__(self, base_url: str, api_key: str, timeout: float = 30.0):
        self.base = base_url.rstrip("/")
        self.http = requests.Session()
        self.http.headers.update({"X-API-KEY": api_key, "Accept": "application/json"})
        self.timeout = timeout

    def request(self, method: str, path: str, *, json_body=None, params=None, retries: int = 5):
        """One API call; 429 (Retry-After) and connection errors are retried a few times."""
        url = self.base + path
        for attempt in range(retries + 1):
            try:
                resp = self.http.request(
                    method, url, json=json_body, params=params, timeout=self.timeout
                )
            except (requests.ConnectionError, requests.Timeout) as e:
                if attempt == retries:
                    raise
                delay = min(2**attempt, 10)
                print(f"  {method} {path}: {e.__class__.__name__}, retrying in {delay}s", file=sys.stderr)
                time.sleep(delay)
                continue
            try:
                body = resp.json()
            except ValueError:
                body = resp.text
            if resp.status_code == 429 and attempt < retries:
                delay = _retry_after(resp.headers.get("Retry-After"), default=1.0)
                code = body.get("code") if isinstance(body, dict) else None
                print(f"  {method} {path}: 429 {code}, retrying in {delay:.1f}s", file=sys.stderr)
                time.sleep(delay)
                continue
            if not 200 <= resp.status_code < 300:
                raise ApiError(method, url, resp.status_code, body)
            return body
        raise AssertionError("unreachable")

    def account(self) -> dict:
        return self.request("GET", f"{API}/account")

    def submit(self, body: dict) -> dict:
        return self.request("POST", f"{API}/queues/insertdataincallqueue/", json_body=body)

    def dispatch(self, batch_id: int) -> dict:
        return self.request("POST", f"{API}/controls/dispatch-calls", json_body={"batch_id": batch_id})

    def status(self, batch_id: int, **params) -> dict:
        return self.request("GET", f"{API}/queues/batch-status/{batch_id}", params=params or None)

    def all_calls(self, batch_id: int, page_size: int = 100):
        """Every call of the batch, following `next_cursor`."""
        cursor = None
        while True:
            params = {"limit": page_size}
            if cursor:
                params["cursor"] = cursor
            page = self.status(batch_id, **params)
            yield from page.get("calls") or []
            cursor = page.get("next_cursor")
            if not cursor:
                return


def _retry_after(value, default: float) -> float:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return default


def rows_per_request(client: Client) -> int:
    """The account's row limit per submission (GET /account), else a conservative default."""
    try:
        acc = client.account().get("account") or {}
    except ApiError as e:
        if e.status in (401, 403):
            raise  # a wrong key fails here, before anything is sent
        print(f"  GET /account failed ({e}); sending {DEFAULT_CHUNK} rows per request", file=sys.stderr)
        return DEFAULT_CHUNK
    limit = (acc.get("limits") or {}).get("max_rows_per_request") or acc.get("max_rows_per_request")
    return int(limit) if isinstance(limit, int) and limit > 0 else DEFAULT_CHUNK


def submit_batch(client: Client, body: dict) -> dict:
    """Sends the batch in chunks; a 413 halves the chunk and sends it again."""
    rows = body["data"]
    settings = {k: v for k, v in body.items() if k != "data"}
    chunk = max(1, min(rows_per_request(client), len(rows) or 1))
    totals = Counter()
    rejected = []
    last = {}
    start = 0
    while start < len(rows) or (start == 0 and not rows):
        part = rows[start : start + chunk]
        try:
            last = client.submit({**settings, "data": part})
        except ApiError as e:
            if e.status == 413 and chunk > 1:
                chunk = max(1, chunk // 2)
                print(f"  413 payload_too_large: retrying with {chunk} rows per request")
                continue
            raise
        totals["accepted"] += last.get("accepted", 0)
        totals["duplicates"] += last.get("duplicates", 0)
        for r in last.get("rejected") or []:
            rejected.append({**r, "index": r.get("index", 0) + start})
        print(
            f"submitted rows {start}..{start + len(part) - 1}: accepted={last.get('accepted')} "
            f"duplicates={last.get('duplicates')} rejected={len(last.get('rejected') or [])} "
            f"total_calls={last.get('total_calls')}"
        )
        start += len(part)
        if not rows:
            break
    return {
        "accepted": totals["accepted"],
        "duplicates": totals["duplicates"],
        "rejected": rejected,
        "total_calls": last.get("total_calls"),
    }


def progress_line(st: dict, elapsed: float) -> str:
    counts = st.get("counts") or {}
    nonzero = " ".join(f"{k}={v}" for k, v in sorted(counts.items()) if v)
    line = (
        f"[{elapsed:6.1f}s] {st.get('batch_status')}: total={st.get('total_calls')} "
        f"completed={st.get('completed_calls')} failed={st.get('failed_calls')} "
        f"pending={st.get('pending_calls')}"
    )
    if nonzero:
        line += f" | {nonzero}"
    if st.get("waiting_reason"):
        line += f" | waiting: {st['waiting_reason']}"
    return line


def is_done(st: dict) -> bool:
    if st.get("batch_status") in FINISHED_BATCH:
        return True
    # Every call final even if the batch state lags behind by a moment.
    return st.get("total_calls", 0) > 0 and st.get("pending_calls", 1) == 0


def summary(client: Client, batch_id: int, st: dict) -> None:
    calls = list(client.all_calls(batch_id))
    by_status = Counter(c.get("call_status") for c in calls)
    by_disp = Counter(c.get("disposition") or "-" for c in calls)
    retried = sum(1 for c in calls if (c.get("attempt") or 1) > 1)
    print()
    print(f"batch {batch_id}: {st.get('batch_status')}")
    print(
        f"  total_calls={st.get('total_calls')} completed_calls={st.get('completed_calls')} "
        f"failed_calls={st.get('failed_calls')} pending_calls={st.get('pending_calls')}"
    )
    print("  call_status:  " + ", ".join(f"{k}={v}" for k, v in by_status.most_common()))
    print("  disposition:  " + ", ".join(f"{k}={v}" for k, v in by_disp.most_common()))
    print(f"  calls that needed more than one attempt: {retried}")


def env_default(name: str):
    value = os.environ.get(name)
    return value if value else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base-url", default=env_default("DIALER_BASE_URL"),
                   help="API base URL, e.g. http://127.0.0.1:8080 (env DIALER_BASE_URL)")
    p.add_argument("--api-key", default=env_default("DIALER_API_KEY"),
                   help="the account's API key (env DIALER_API_KEY)")
    p.add_argument("--batch", required=True, help="JSON file: a submit-batch request body")
    p.add_argument("--batch-id", type=int, help="use this batch_id instead of the file's")
    p.add_argument("--dispatch", action="store_true",
                   help="dispatch the batch after submitting it (else it waits for a dispatch)")
    p.add_argument("--poll-seconds", type=float, default=2.0, help="seconds between status polls")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="give up waiting after this many seconds (exit 2)")
    p.add_argument("--request-timeout", type=float, default=30.0, help="seconds per HTTP request")
    args = p.parse_args(argv)
    if not args.base_url or not args.api_key:
        p.error("--base-url and --api-key are required (or DIALER_BASE_URL / DIALER_API_KEY)")

    try:
        with open(args.batch, encoding="utf-8") as f:
            body = json.load(f)
    except (OSError, ValueError) as e:
        print(f"error: cannot read batch file {args.batch}: {e}", file=sys.stderr)
        return 3
    if not isinstance(body, dict) or not isinstance(body.get("data"), list) or "batch_id" not in body:
        print("error: the batch file must be an object with `batch_id` and a `data` list", file=sys.stderr)
        return 3
    if args.batch_id is not None:
        body["batch_id"] = args.batch_id
    batch_id = body["batch_id"]
    client = Client(args.base_url, args.api_key, timeout=args.request_timeout)
    started = time.monotonic()
    try:
        res = submit_batch(client, body)
        print(
            f"batch {batch_id}: accepted={res['accepted']} duplicates={res['duplicates']} "
            f"rejected={len(res['rejected'])} total_calls={res['total_calls']}"
        )
        for r in res["rejected"][:20]:
            print(f"  rejected row {r.get('index')}: {r.get('phone_number')!r} {r.get('reason')}")
        if len(res["rejected"]) > 20:
            print(f"  ... and {len(res['rejected']) - 20} more")
        if args.dispatch:
            d = client.dispatch(batch_id)
            print(f"dispatched: {d.get('dispatched')} batch(es) {d.get('batches')}")
        deadline = started + args.timeout
        last_line = None
        warned_pending = False
        while True:
            st = client.status(batch_id, limit=1)
            line = progress_line(st, time.monotonic() - started)
            if line.split("] ", 1)[1] != last_line:
                print(line, flush=True)
                last_line = line.split("] ", 1)[1]
            if is_done(st):
                break
            if st.get("batch_status") == "pending" and not args.dispatch and not warned_pending:
                print("  (batch not dispatched yet: pass --dispatch, or dispatch it another way)")
                warned_pending = True
            if time.monotonic() >= deadline:
                print(f"error: timed out after {args.timeout:.0f}s with "
                      f"{st.get('pending_calls')} calls pending", file=sys.stderr)
                summary(client, batch_id, st)
                return 2
            time.sleep(args.poll_seconds)
        summary(client, batch_id, st)
        return 0
    except ApiError as e:
        print(f"error: {e}", file=sys.stderr)
        print(json.dumps(e.body, indent=2) if isinstance(e.body, (dict, list)) else e.body, file=sys.stderr)
        return 1
    except requests.RequestException as e:
        print(f"error: cannot reach {args.base_url}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

-- Each dialed server's live state as its holder sees it, written every second (issue 16): only
-- the dispatcher holding a server knows its AMI session and its overload back-off, and the API
-- (waiting_reason, the console, the dry run) must tell "no PBX connected" from "no PBX enabled".
-- A row not written for a few seconds means no dispatcher follows the server now.
CREATE TABLE server_status (
    server_id       BIGINT PRIMARY KEY REFERENCES asterisk_servers (id) ON DELETE CASCADE,
    holder          TEXT NOT NULL,
    connected       BOOLEAN NOT NULL,
    draining        BOOLEAN NOT NULL,
    capacity_factor DOUBLE PRECISION NOT NULL,
    live_calls      INTEGER NOT NULL,
    reported_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

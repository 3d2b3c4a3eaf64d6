-- The console's reads of the last hour by time (migration 2026-12-10-000001) used B-tree indexes
-- on call_attempts (originated_at, ended_at) and callback_deliveries (attempted_at). Every row
-- version of an attempt (it is updated at each step of a call, and those updates are not HOT:
-- the live-attempt indexes' predicate reads `state`) and every delivery wrote them, which cost
-- the burst bench 5-20 % of its call lifecycles per second and PostgreSQL more CPU per call.
-- These columns follow the insertion order, so a BRIN index (a few pages, next to nothing to
-- maintain) finds the last hour's block ranges as well.
DROP INDEX call_attempts_originated;
DROP INDEX call_attempts_ended;
DROP INDEX callback_deliveries_attempted;
CREATE INDEX call_attempts_originated_brin ON call_attempts USING brin (originated_at);
CREATE INDEX call_attempts_ended_brin ON call_attempts USING brin (ended_at);
CREATE INDEX callback_deliveries_attempted_brin ON callback_deliveries USING brin (attempted_at);

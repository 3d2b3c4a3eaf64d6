//! dialer-core's integration tests, one binary: migrations, schema checks, the outbox and the
//! SQL-built event bodies against real PostgreSQL and RabbitMQ.

mod database_and_broker;
mod phone_agreement;

//! The target dialect layer against real databases. Every test runs on SQLite (a temporary
//! file), on PostgreSQL when `FERRY_TEST_POSTGRES_URL` is set and on MariaDB/MySQL when
//! `FERRY_TEST_MYSQL_URL` is set, each in a fresh database.

mod apply;
mod check;
mod copy;
mod schema;
mod support;

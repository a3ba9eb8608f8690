//! Storages: where studies and trials live, behind the core `Storage` trait.

pub mod conformance;
mod memory;
mod sqlite;

pub use memory::InMemoryStorage;
pub use sqlite::{SCHEMA_VERSION, SqliteError, SqliteStorage};

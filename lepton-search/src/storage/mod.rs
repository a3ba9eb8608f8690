//! Storages: where studies and trials live, behind the core `Storage` trait.

mod memory;

pub use memory::InMemoryStorage;

//! Opening a storage from a URL, as the command line and worker processes name them.

use std::sync::Arc;

use lepton_core::{Error, Result, Storage};

use super::InMemoryStorage;

/// Opens the storage a URL names: `memory:` (a fresh in-memory storage), `sqlite://PATH`
/// (`sqlite:///tmp/s.db` is the absolute path `/tmp/s.db`, `sqlite://s.db` a relative one;
/// `?synchronous=full` makes every commit durable across power loss, see `Synchronous`; the
/// `sqlite` feature), or `postgres://...` / `postgresql://...` (any libpq-style URL,
/// `sslmode` included; see `PostgresStorage::connect`; the `postgres` feature). A URL of a
/// storage this build left out is refused with the feature that brings it.
pub fn open(url: &str) -> Result<Arc<dyn Storage>> {
    if url == "memory:" {
        return Ok(Arc::new(InMemoryStorage::new()));
    }
    if let Some(rest) = url.strip_prefix("sqlite://") {
        return sqlite(url, rest);
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return postgres(url);
    }
    Err(Error::InvalidInput(format!(
        "unknown storage URL `{url}`: use memory:, sqlite://PATH or postgres://..."
    )))
}

#[cfg(feature = "sqlite")]
fn sqlite(url: &str, rest: &str) -> Result<Arc<dyn Storage>> {
    use super::{SqliteStorage, Synchronous};
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() {
        return Err(Error::InvalidInput(format!("`{url}` names no file")));
    }
    let mut synchronous = Synchronous::Normal;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        synchronous = match pair.split_once('=') {
            Some(("synchronous", value)) => Synchronous::parse(value).ok_or_else(|| {
                Error::InvalidInput(format!(
                    "`{url}`: synchronous must be normal or full, not `{value}`"
                ))
            })?,
            _ => {
                return Err(Error::InvalidInput(format!(
                    "`{url}`: unknown parameter `{pair}` (SQLite takes synchronous=normal|full)"
                )));
            }
        };
    }
    Ok(Arc::new(SqliteStorage::open_with(path, synchronous)?))
}

#[cfg(not(feature = "sqlite"))]
fn sqlite(url: &str, _rest: &str) -> Result<Arc<dyn Storage>> {
    Err(left_out(url, "sqlite"))
}

#[cfg(feature = "postgres")]
fn postgres(url: &str) -> Result<Arc<dyn Storage>> {
    Ok(Arc::new(super::PostgresStorage::connect(url)?))
}

#[cfg(not(feature = "postgres"))]
fn postgres(url: &str) -> Result<Arc<dyn Storage>> {
    Err(left_out(url, "postgres"))
}

#[cfg(not(all(feature = "sqlite", feature = "postgres")))]
fn left_out(url: &str, feature: &str) -> Error {
    Error::InvalidInput(format!(
        "`{url}` needs lepton-search's `{feature}` feature, which this build leaves out"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "sqlite")]
    #[test]
    fn urls() {
        assert!(open("memory:").is_ok());
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        // An absolute path: `sqlite:///tmp/...` on Unix, `sqlite://C:\...` on Windows.
        assert!(dir.path().is_absolute());
        #[cfg(unix)]
        assert!(url.starts_with("sqlite:///"));
        open(&url)
            .unwrap()
            .create_study("s", Default::default())
            .unwrap();
        assert_eq!(open(&url).unwrap().study_names().unwrap(), ["s"]);
        // A durable file is the same file, whatever its synchronous setting.
        let full = open(&format!("{url}?synchronous=full")).unwrap();
        assert_eq!(full.study_names().unwrap(), ["s"]);
        assert!(full.is_persistent() && !open("memory:").unwrap().is_persistent());
        for bad in ["?synchronous=off", "?durable=yes", "?synchronous"] {
            let e = open(&format!("{url}{bad}")).err().unwrap();
            assert!(e.to_string().contains(bad.trim_start_matches('?')), "{e}");
        }
        for bad in [
            "",
            "sqlite://",
            "sqlite://?synchronous=full",
            "mysql://x",
            "memory",
        ] {
            assert!(open(bad).is_err(), "{bad}");
        }
    }

    #[cfg(not(feature = "sqlite"))]
    #[test]
    fn a_left_out_storage_names_its_feature() {
        let e = open("sqlite://s.db").err().unwrap();
        assert!(e.to_string().contains("`sqlite` feature"), "{e}");
    }
}

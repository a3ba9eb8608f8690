//! Fetching a published IDX set from its mirrors (the `download` feature): each file is
//! streamed into `NAME.gz.part` beside its destination (never whole in memory), verified
//! against its published digest, and only then renamed into place; a file that fails is removed and the next
//! mirror tried. A progress bar shows on a terminal (none otherwise).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::mnist::{FASHION_MNIST, IdxFile, IdxSet, MNIST, verified};
use crate::error::{DataError, Result};
use crate::idx::read_file;

/// The most bytes one file may have: the largest of these sets, Fashion-MNIST's training
/// images, is 26 MB compressed. A server sending more is refused, not believed.
const MAX_DOWNLOAD_BYTES: u64 = 256 << 20;

/// Downloads MNIST's four files (as `STEM.gz`) from the first of `mirrors` (base URLs, such
/// as [`MNIST_MIRRORS`](super::MNIST_MIRRORS)) that serves each of them correctly into `dir`,
/// created if need be; files already in `dir` are kept as they are (and checked when read).
pub fn download_mnist(dir: impl AsRef<Path>, mirrors: &[&str]) -> Result<()> {
    download_set(&MNIST, dir.as_ref(), mirrors)
}

/// [`download_mnist`] for Fashion-MNIST (mirrors such as
/// [`FASHION_MNIST_MIRRORS`](super::FASHION_MNIST_MIRRORS)).
pub fn download_fashion_mnist(dir: impl AsRef<Path>, mirrors: &[&str]) -> Result<()> {
    download_set(&FASHION_MNIST, dir.as_ref(), mirrors)
}

/// Every file of `set` that `dir` lacks, from `mirrors`.
pub(crate) fn download_set(set: &IdxSet, dir: &Path, mirrors: &[&str]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| DataError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    for file in set.all_files() {
        let present = [file.stem.to_owned(), format!("{}.gz", file.stem)]
            .iter()
            .any(|name| dir.join(name).is_file());
        if !present {
            download_file(&agent, set.name, &file, dir, mirrors)?;
        }
    }
    Ok(())
}

/// `file` from the first mirror that serves it with its published digest, as
/// `dir/STEM.gz`; every mirror's failure in the error otherwise.
fn download_file(
    agent: &ureq::Agent,
    set: &str,
    file: &IdxFile,
    dir: &Path,
    mirrors: &[&str],
) -> Result<PathBuf> {
    let name = format!("{}.gz", file.stem);
    let (target, part) = (dir.join(&name), dir.join(format!("{name}.part")));
    let mut failures = Vec::new();
    for mirror in mirrors {
        let url = format!("{}/{name}", mirror.trim_end_matches('/'));
        tracing::info!(%url, to = %target.display(), "downloading {set}");
        let fetched =
            fetch(agent, &url, &part).and_then(|()| verified(file, &url, read_file(&part)?));
        match fetched {
            Ok(_) => {
                std::fs::rename(&part, &target).map_err(|source| DataError::Io {
                    path: target.display().to_string(),
                    source,
                })?;
                return Ok(target);
            }
            Err(e) => {
                // Nothing unverified stays behind.
                let _ = std::fs::remove_file(&part);
                tracing::warn!(%url, error = %e, "download refused");
                failures.push(e.to_string());
            }
        }
    }
    Err(DataError::Download {
        name,
        reason: if failures.is_empty() {
            "no mirror given".into()
        } else {
            format!("no mirror served it ({})", failures.join("; "))
        },
    })
}

/// The body of `url`, written to `part` as it arrives.
fn fetch(agent: &ureq::Agent, url: &str, part: &Path) -> Result<()> {
    let failed = |reason: String| DataError::Download {
        name: url.to_owned(),
        reason,
    };
    let mut response = agent.get(url).call().map_err(|e| failed(e.to_string()))?;
    let length = response.body().content_length();
    if let Some(length) = length.filter(|l| *l > MAX_DOWNLOAD_BYTES) {
        return Err(failed(format!(
            "{length} bytes announced, more than the {MAX_DOWNLOAD_BYTES} a data file may have"
        )));
    }
    let bar = ProgressBar::new(length.unwrap_or(0));
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} {bar:30} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    ) {
        bar.set_style(style);
    }
    bar.set_message(url.rsplit('/').next().unwrap_or(url).to_owned());
    let mut out = std::fs::File::create(part).map_err(|source| DataError::Io {
        path: part.display().to_string(),
        source,
    })?;
    // One byte past the limit tells a body that is too long.
    let body = response.body_mut().as_reader().take(MAX_DOWNLOAD_BYTES + 1);
    let received = std::io::copy(&mut bar.wrap_read(body), &mut out)
        .and_then(|n| out.sync_all().map(|()| n))
        .map_err(|e| failed(e.to_string()))?;
    bar.finish_and_clear();
    if received > MAX_DOWNLOAD_BYTES {
        return Err(failed(format!(
            "more than the {MAX_DOWNLOAD_BYTES} bytes a data file may have"
        )));
    }
    if let Some(length) = length.filter(|l| *l != received) {
        return Err(failed(format!(
            "{received} bytes received of the {length} announced"
        )));
    }
    Ok(())
}

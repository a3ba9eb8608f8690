//! The `download` feature against local HTTP servers: MNIST's files served as published are
//! fetched and verified, a corrupt file is refused and removed (and the next mirror tried),
//! and an unreachable or failing mirror gives an error that names it.

// Clippy's test exemption does not see this module's `cfg(all(test, feature))`.
#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use lepton_core::Dataset;

use super::{MnistSplit, download_fashion_mnist, download_mnist, mnist_from_dir};
use crate::DataError;
use crate::test_data::shared_data;

const STEMS: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// A server on 127.0.0.1 answering `GET /NAME` with `files[NAME]` (404 otherwise), one
/// connection at a time, for as long as the test runs; its base URL, and the paths asked.
fn serve(files: BTreeMap<String, Vec<u8>>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            // The headers, up to the blank line.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request
                .split(' ')
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/');
            log.lock().unwrap().push(path.to_owned());
            let (status, body) = match files.get(path) {
                Some(body) => ("200 OK", body.as_slice()),
                None => ("404 Not Found", &b"not here"[..]),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/gzip\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    (base, asked)
}

/// Gzip of an IDX file that is valid but not MNIST's: 2 images of 2x2, or 2 labels.
fn wrong_idx(stem: &str) -> Vec<u8> {
    let mut idx = if stem.contains("images") {
        let mut b = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2];
        b.extend([7u8; 8]);
        b
    } else {
        vec![0, 0, 8, 1, 0, 0, 0, 2, 1, 2]
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&idx).unwrap();
    idx = gz.finish().unwrap();
    idx
}

fn corrupt_files() -> BTreeMap<String, Vec<u8>> {
    STEMS
        .iter()
        .map(|s| (format!("{s}.gz"), wrong_idx(s)))
        .collect()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_corrupt_file_is_refused_and_removed() {
    let (base, asked) = serve(corrupt_files());
    let dir = tempfile::tempdir().unwrap();
    let e = download_mnist(dir.path(), &[&base]).unwrap_err();
    assert!(matches!(e, DataError::Download { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("train-images-idx3-ubyte.gz") && text.contains("SHA-256"),
        "{text}"
    );
    assert!(text.contains(&base), "{text}");
    // Nothing unverified is left, not even the partial file.
    assert!(
        names_in(dir.path()).is_empty(),
        "{:?}",
        names_in(dir.path())
    );
    assert_eq!(*asked.lock().unwrap(), ["train-images-idx3-ubyte.gz"]);
    // Fashion-MNIST's files are checked against the digests of its gzip files.
    let e = download_fashion_mnist(dir.path(), &[&base]).unwrap_err();
    assert!(e.to_string().contains("3aede38d"), "{e}");
    assert!(names_in(dir.path()).is_empty());
}

#[test]
fn an_unreachable_or_failing_mirror_is_named_in_the_error() {
    // A port nothing listens on: the machine offline, as far as this mirror goes.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", listener.local_addr().unwrap())
    };
    let (empty, _) = serve(BTreeMap::new());
    let dir = tempfile::tempdir().unwrap();
    let e = download_mnist(dir.path().join("new"), &[&closed, &empty]).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("no mirror served it"), "{text}");
    assert!(text.contains(&closed) && text.contains(&empty), "{text}");
    assert!(text.contains("404"), "{text}");
    assert!(names_in(&dir.path().join("new")).is_empty());
    let e = download_mnist(dir.path(), &[]).unwrap_err();
    assert!(e.to_string().contains("no mirror given"), "{e}");
}

#[test]
fn mnist_comes_from_the_first_mirror_that_serves_it_as_published() {
    let Some(shared) = shared_data("mnist") else {
        return;
    };
    let published: BTreeMap<String, Vec<u8>> = STEMS
        .iter()
        .map(|s| {
            let name = format!("{s}.gz");
            let bytes = std::fs::read(shared.join(&name)).unwrap();
            (name, bytes)
        })
        .collect();
    let (bad, bad_asked) = serve(corrupt_files());
    let (good, good_asked) = serve(published.clone());
    let dir = tempfile::tempdir().unwrap();
    download_mnist(dir.path(), &[&bad, &good]).unwrap();
    // Every file was tried on the corrupt mirror first, then taken from the good one.
    let all: Vec<String> = STEMS.iter().map(|s| format!("{s}.gz")).collect();
    assert_eq!(*bad_asked.lock().unwrap(), all);
    assert_eq!(*good_asked.lock().unwrap(), all);
    assert_eq!(names_in(dir.path()), {
        let mut sorted = all.clone();
        sorted.sort();
        sorted
    });
    for (name, bytes) in &published {
        assert_eq!(&std::fs::read(dir.path().join(name)).unwrap(), bytes);
    }
    let test = mnist_from_dir(dir.path(), MnistSplit::Test, true).unwrap();
    let train = mnist_from_dir(dir.path(), MnistSplit::Train, true).unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    // Files already there are not fetched again.
    let (again, again_asked) = serve(published);
    download_mnist(dir.path(), &[&again]).unwrap();
    assert!(again_asked.lock().unwrap().is_empty());
}

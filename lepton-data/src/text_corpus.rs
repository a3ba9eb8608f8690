//! Labelled text documents: a folder per class (`DIR/CLASS/FILE`, as scikit-learn's
//! `load_files` and Keras' `text_dataset_from_directory` read), a `.tar.gz` of one, or a CSV
//! file with a text column and a label column.
//!
//! Bytes are decoded leniently and without loss: a document that is valid UTF-8 is read as
//! such, any other as ISO-8859-1 (Latin-1: each byte is the character of the same code, so
//! nothing is dropped or replaced; old e-mail is mostly Latin-1). The count of documents read
//! that way is kept ([`TextCorpus::latin1_documents`]).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::error::{DataError, Result};

/// The largest document read, in bytes: a larger file is refused, naming it, rather than
/// read into memory (a corpus of e-mails or reviews has documents of kilobytes).
pub const MAX_DOCUMENT_BYTES: u64 = 16 << 20;

/// Labelled documents, their classes sorted by name, each document's source named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextCorpus {
    texts: Vec<String>,
    labels: Vec<usize>,
    classes: Vec<String>,
    sources: Vec<String>,
    /// Whether each document was read as Latin-1.
    latin1: Vec<bool>,
}

impl TextCorpus {
    /// A folder per class: every regular file of `DIR/CLASS/` (files and folders whose name
    /// starts with a dot are skipped), in name order, class names sorted. Files directly in
    /// `dir`, and deeper folders, are not documents of any class and are refused.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let mut documents = Vec::new();
        for class_dir in sorted_entries(dir)? {
            let class = file_name(&class_dir);
            if !class_dir.is_dir() {
                return Err(invalid(format!(
                    "{}: a file beside the class folders; {} should hold only CLASS/FILE",
                    class_dir.display(),
                    dir.display()
                )));
            }
            for path in sorted_entries(&class_dir)? {
                if path.is_dir() {
                    return Err(invalid(format!(
                        "{}: a folder inside class `{class}`; a class folder holds documents",
                        path.display()
                    )));
                }
                let bytes = read_document(&path)?;
                documents.push((class.clone(), path.display().to_string(), bytes));
            }
        }
        Self::from_documents(&dir.display().to_string(), documents)
    }

    /// A gzip-compressed tar archive of a folder per class: each regular file's class is the
    /// folder that holds it (`CLASS/FILE` or `TOP/CLASS/FILE`). The archive is read as a
    /// stream: nothing is written to disk, so no entry's path can reach outside.
    pub fn from_tar_gz(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let io = |source| DataError::Io {
            path: name.clone(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut documents = Vec::new();
        for entry in archive.entries().map_err(io)? {
            let entry = entry.map_err(io)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let inner = entry.path().map_err(io)?.into_owned();
            let parts: Vec<String> = inner
                .components()
                .filter_map(|c| match c {
                    Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect();
            if parts.iter().any(|p| p.starts_with('.')) {
                continue;
            }
            let class = match parts.len() {
                2 | 3 => parts[parts.len() - 2].clone(),
                _ => {
                    return Err(invalid(format!(
                        "{name}: `{}` is not CLASS/FILE or TOP/CLASS/FILE",
                        inner.display()
                    )));
                }
            };
            let source = format!("{name}:{}", inner.display());
            if entry.header().size().map_err(io)? > MAX_DOCUMENT_BYTES {
                return Err(too_large(&source));
            }
            let mut bytes = Vec::new();
            entry
                .take(MAX_DOCUMENT_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(io)?;
            if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
                return Err(too_large(&source));
            }
            documents.push((class, source, bytes));
        }
        documents.sort_by(|a, b| a.1.cmp(&b.1));
        Self::from_documents(&name, documents)
    }

    /// A CSV file with a header: the text of each row in `text_column`, its class in
    /// `label_column` (other columns are ignored). Quoted fields may span lines. A row
    /// without a label or a text is refused, naming its line.
    pub fn from_csv(path: impl AsRef<Path>, text_column: &str, label_column: &str) -> Result<Self> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| DataError::Io {
            path: name.clone(),
            source,
        })?;
        Self::read_csv(&name, file, text_column, label_column)
    }

    /// [`TextCorpus::from_csv`] from any reader; `name` names it in errors.
    pub fn read_csv(
        name: &str,
        reader: impl Read,
        text_column: &str,
        label_column: &str,
    ) -> Result<Self> {
        let mut csv = csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(reader);
        let csv_error = |e: csv::Error| DataError::Csv {
            path: name.to_owned(),
            line: e.position().map_or(0, |p| p.line()),
            message: e.to_string(),
        };
        let header = csv.byte_headers().map_err(csv_error)?.clone();
        let column = |wanted: &str| {
            header
                .iter()
                .position(|h| decode(h.to_vec()).0.trim() == wanted)
                .ok_or_else(|| {
                    let names: Vec<String> = header.iter().map(|h| decode(h.to_vec()).0).collect();
                    invalid(format!(
                        "{name}: no column `{wanted}` (columns: {})",
                        names.join(", ")
                    ))
                })
        };
        let (text_at, label_at) = (column(text_column)?, column(label_column)?);
        let mut documents = Vec::new();
        for record in csv.byte_records() {
            let record = record.map_err(csv_error)?;
            let line = record.position().map_or(0, |p| p.line());
            let label = decode(record.get(label_at).unwrap_or_default().to_vec()).0;
            let label = label.trim();
            if label.is_empty() {
                return Err(DataError::MissingValue {
                    path: name.to_owned(),
                    line,
                    column: label_column.to_owned(),
                });
            }
            let text = record.get(text_at).unwrap_or_default();
            if text.len() as u64 > MAX_DOCUMENT_BYTES {
                return Err(too_large(&format!("{name}, line {line}")));
            }
            documents.push((
                label.to_owned(),
                format!("{name}, line {line}"),
                text.to_vec(),
            ));
        }
        Self::from_documents(name, documents)
    }

    fn from_documents(name: &str, documents: Vec<(String, String, Vec<u8>)>) -> Result<Self> {
        if documents.is_empty() {
            return Err(DataError::Empty {
                path: name.to_owned(),
                what: "no documents",
            });
        }
        let classes: BTreeMap<String, usize> = documents
            .iter()
            .map(|(class, _, _)| (class.clone(), 0))
            .collect();
        let classes: BTreeMap<String, usize> = classes
            .into_keys()
            .enumerate()
            .map(|(i, c)| (c, i))
            .collect();
        if classes.len() < 2 {
            return Err(invalid(format!(
                "{name}: every document is of class `{}`; a classification needs two classes \
                 or more",
                documents[0].0
            )));
        }
        let mut corpus = TextCorpus {
            texts: Vec::with_capacity(documents.len()),
            labels: Vec::with_capacity(documents.len()),
            classes: classes.keys().cloned().collect(),
            sources: Vec::with_capacity(documents.len()),
            latin1: Vec::with_capacity(documents.len()),
        };
        for (class, source, bytes) in documents {
            let (text, latin1) = decode(bytes);
            corpus.latin1.push(latin1);
            corpus.texts.push(text);
            corpus.labels.push(classes[&class]);
            corpus.sources.push(source);
        }
        tracing::debug!(
            source = name,
            documents = corpus.len(),
            classes = corpus.classes.len(),
            latin1 = corpus.latin1_documents(),
            "read a text corpus"
        );
        Ok(corpus)
    }

    /// The number of documents.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether there is no document (never, for a corpus that was read).
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// The documents' texts.
    pub fn texts(&self) -> &[String] {
        &self.texts
    }

    /// Each document's class, an index into [`TextCorpus::classes`].
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// The class names, sorted.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Where each document came from: its file, archive entry or CSV line.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// How many documents were not valid UTF-8 and were read as Latin-1.
    pub fn latin1_documents(&self) -> usize {
        self.latin1.iter().filter(|l| **l).count()
    }

    /// The number of documents of each class, in [`TextCorpus::classes`] order.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        self.labels.iter().for_each(|&l| counts[l] += 1);
        counts
    }

    /// The documents at `indices` (in that order), with every class kept.
    pub fn select(&self, indices: &[usize]) -> Result<Self> {
        if let Some(&i) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(invalid(format!(
                "row {i} of a corpus of {} documents",
                self.len()
            )));
        }
        let pick = |v: &[String]| indices.iter().map(|&i| v[i].clone()).collect();
        Ok(TextCorpus {
            texts: pick(&self.texts),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes.clone(),
            sources: pick(&self.sources),
            latin1: indices.iter().map(|&i| self.latin1[i]).collect(),
        })
    }
}

/// `bytes` as text: UTF-8 when valid (without a copy), else Latin-1; and whether it was
/// Latin-1.
fn decode(bytes: Vec<u8>) -> (String, bool) {
    match String::from_utf8(bytes) {
        Ok(text) => (text, false),
        Err(e) => (e.as_bytes().iter().map(|&b| char::from(b)).collect(), true),
    }
}

fn read_document(path: &Path) -> Result<Vec<u8>> {
    let name = path.display().to_string();
    let io = |source| DataError::Io {
        path: name.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    if file.metadata().map_err(io)?.len() > MAX_DOCUMENT_BYTES {
        return Err(too_large(&name));
    }
    let mut bytes = Vec::new();
    file.take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(too_large(&name));
    }
    Ok(bytes)
}

/// The entries of `dir` whose names do not start with a dot, sorted by name.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| DataError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if !file_name(&path).starts_with('.') {
            entries.push(path);
        }
    }
    entries.sort();
    Ok(entries)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn too_large(source: &str) -> DataError {
    invalid(format!(
        "{source}: a document larger than {MAX_DOCUMENT_BYTES} bytes"
    ))
}

fn invalid(message: String) -> DataError {
    DataError::InvalidInput(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_folder_per_class_reads_every_document_and_decodes_latin1() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("spam/b.txt"), b"win money");
        write(&d.join("spam/a.txt"), b"caf\xe9 offer"); // Latin-1, not UTF-8
        write(
            &d.join("ham/1.txt"),
            "meeting at noon \u{2014} ok".as_bytes(),
        );
        write(&d.join("ham/.hidden"), b"skipped");
        let corpus = TextCorpus::from_dir(d).unwrap();
        assert_eq!(corpus.classes(), ["ham", "spam"]);
        assert_eq!(corpus.labels(), [0, 1, 1]);
        assert_eq!(
            corpus.texts(),
            [
                "meeting at noon \u{2014} ok",
                "caf\u{e9} offer",
                "win money"
            ]
        );
        assert_eq!(corpus.latin1_documents(), 1);
        assert_eq!(corpus.class_counts(), [1, 2]);
        assert!(corpus.sources()[1].ends_with("a.txt"));
        let picked = corpus.select(&[2, 0]).unwrap();
        assert_eq!(picked.labels(), [1, 0]);
        assert_eq!(picked.latin1_documents(), 0);
        assert_eq!(corpus.select(&[1]).unwrap().latin1_documents(), 1);
        assert!(corpus.select(&[3]).is_err());
    }

    #[test]
    fn bad_layouts_are_refused_with_their_reason() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("only/a.txt"), b"one class");
        let e = TextCorpus::from_dir(d).unwrap_err();
        assert!(e.to_string().contains("two classes"), "{e}");
        write(&d.join("stray.txt"), b"not in a class");
        let e = TextCorpus::from_dir(d).unwrap_err();
        assert!(e.to_string().contains("beside the class folders"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            TextCorpus::from_dir(empty.path()),
            Err(DataError::Empty { .. })
        ));
        assert!(matches!(
            TextCorpus::from_dir(d.join("missing")),
            Err(DataError::Io { .. })
        ));
    }

    #[test]
    fn a_tar_gz_of_class_folders_is_read_as_a_stream() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("corpus.tar.gz");
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&archive).unwrap(),
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        for (path, text) in [
            ("top/neg/1.txt", &b"dull and slow"[..]),
            ("top/pos/2.txt", &b"a joy \xff"[..]),
            ("top/pos/1.txt", &b"wonderful"[..]),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, path, text).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
        let corpus = TextCorpus::from_tar_gz(&archive).unwrap();
        assert_eq!(corpus.classes(), ["neg", "pos"]);
        assert_eq!(corpus.labels(), [0, 1, 1]);
        assert_eq!(corpus.texts()[1], "wonderful");
        assert_eq!(corpus.texts()[2], "a joy \u{ff}");
        assert_eq!(corpus.latin1_documents(), 1);
        std::fs::write(&archive, b"not gzip").unwrap();
        assert!(TextCorpus::from_tar_gz(&archive).is_err());
    }

    #[test]
    fn a_csv_text_column_with_its_labels() {
        let text = "id,review,label\n1,\"good, \"\"really\"\"\nfine\",pos\n2,bad,neg\n3,meh,pos\n";
        let corpus = TextCorpus::read_csv("r.csv", text.as_bytes(), "review", "label").unwrap();
        assert_eq!(corpus.classes(), ["neg", "pos"]);
        assert_eq!(corpus.texts()[0], "good, \"really\"\nfine");
        assert_eq!(corpus.labels(), [1, 0, 1]);
        let e = TextCorpus::read_csv("r.csv", text.as_bytes(), "body", "label").unwrap_err();
        assert!(e.to_string().contains("body"), "{e}");
        let missing = "review,label\nfine,pos\nbad,\nok,neg\n";
        let e = TextCorpus::read_csv("r.csv", missing.as_bytes(), "review", "label").unwrap_err();
        assert!(matches!(e, DataError::MissingValue { line: 3, .. }), "{e}");
        let ragged = "review,label\nfine,pos,extra\n";
        assert!(TextCorpus::read_csv("r.csv", ragged.as_bytes(), "review", "label").is_err());
    }

    #[test]
    fn the_shared_spamassassin_archive_has_its_published_counts() {
        let Some(archive) = crate::test_data::shared_data("text/spamassassin.tar.gz") else {
            return;
        };
        let corpus = TextCorpus::from_tar_gz(archive).unwrap();
        assert_eq!(corpus.classes(), ["ham", "spam"]);
        assert_eq!(corpus.class_counts(), [4150, 1896]);
        assert!(corpus.texts().iter().all(|t| !t.is_empty()));
    }
}

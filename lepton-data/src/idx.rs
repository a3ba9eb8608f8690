//! The IDX format of MNIST and Fashion-MNIST: a magic number, big-endian dimensions, then the
//! data. Read raw or gzip-compressed; every header is checked against the file's length, and
//! nothing larger than 1 GiB of data (or items larger than that, whatever the count) is read
//! or decompressed.

use std::io::Read;
use std::path::Path;

use crate::error::{DataError, Result};

/// The most data bytes an IDX file may declare, and the most an item (the dimensions after the
/// first) may have: MNIST's training images are 47 MB.
const MAX_IDX_BYTES: usize = 1 << 30;

/// An IDX array of unsigned bytes (element type `0x08`, the type of every MNIST-style file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first (e.g. `[60000, 28, 28]`).
    pub dims: Vec<usize>,
    /// The elements, row-major.
    pub data: Vec<u8>,
}

/// Reads an IDX file, gzip-compressed or not (decided by its first bytes, not its name).
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let bytes = read_file(path)?;
    parse_idx(&name, &decompress(&name, bytes)?)
}

/// The bytes of the IDX file at `path`, refused unread when larger than any IDX file read.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    let name = path.display().to_string();
    let io = |source| DataError::Io {
        path: name.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    // The largest header (255 dimensions) and data.
    let limit = (MAX_IDX_BYTES + 4 + 4 * 255) as u64;
    let size = file.metadata().map_err(io)?.len();
    if size > limit {
        return Err(idx_error(
            &name,
            format!("{size} bytes is more than an IDX file may have ({limit})"),
        ));
    }
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}

/// The bytes themselves, or their gzip decompression when they start with gzip's magic. The
/// header is decompressed first, and then no more data than it declares (plus one byte, to
/// tell trailing bytes): a small file cannot expand into more than its header admits.
pub(crate) fn decompress(name: &str, bytes: Vec<u8>) -> Result<Vec<u8>> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let gzip = |e: std::io::Error| idx_error(name, format!("gzip: {e}"));
    let mut decoder = flate2::read::MultiGzDecoder::new(&bytes[..]);
    let mut out = Vec::new();
    decoder
        .by_ref()
        .take(4)
        .read_to_end(&mut out)
        .map_err(gzip)?;
    let ndims = out.get(3).copied().unwrap_or(0);
    decoder
        .by_ref()
        .take(4 * u64::from(ndims))
        .read_to_end(&mut out)
        .map_err(gzip)?;
    let (_, header, expected) = parse_header(name, &out)?;
    let wanted = (expected + 1) as u64;
    decoder
        .by_ref()
        .take(wanted)
        .read_to_end(&mut out)
        .map_err(gzip)?;
    if out.len() > header + expected {
        return Err(idx_error(
            name,
            format!(
                "gzip: decompresses to more than the {expected} data bytes its header declares"
            ),
        ));
    }
    Ok(out)
}

/// Parses IDX bytes; `name` appears in errors.
pub fn parse_idx(name: &str, bytes: &[u8]) -> Result<IdxArray> {
    let (dims, header, expected) = parse_header(name, bytes)?;
    let found = bytes.len() - header;
    if found != expected {
        return Err(idx_error(
            name,
            format!(
                "dimensions {dims:?} need {expected} data bytes, the file has {found} ({})",
                if found < expected {
                    "truncated"
                } else {
                    "trailing bytes"
                }
            ),
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// The dimensions, the header's length and the data bytes the header declares, checked: the
/// data and each item (the dimensions after the first) at most [`MAX_IDX_BYTES`], so that a
/// zero count cannot hide items of any size.
fn parse_header(name: &str, bytes: &[u8]) -> Result<(Vec<usize>, usize, usize)> {
    let [zero1, zero2, kind, ndims, ..] = *bytes else {
        return Err(idx_error(
            name,
            format!("{} bytes is too short for an IDX header", bytes.len()),
        ));
    };
    if zero1 != 0 || zero2 != 0 {
        return Err(idx_error(
            name,
            format!(
                "bad magic number {:02x}{:02x}{kind:02x}{ndims:02x}: not an IDX file",
                zero1, zero2
            ),
        ));
    }
    if kind != 0x08 {
        let what = match kind {
            0x09 => "i8",
            0x0B => "i16",
            0x0C => "i32",
            0x0D => "f32",
            0x0E => "f64",
            _ => "unknown",
        };
        return Err(idx_error(
            name,
            format!(
                "element type 0x{kind:02x} ({what}) is not supported: only unsigned bytes (0x08)"
            ),
        ));
    }
    let ndims = usize::from(ndims);
    if ndims == 0 {
        return Err(idx_error(name, "zero dimensions".into()));
    }
    let header = 4 + 4 * ndims;
    let dim_bytes = bytes.get(4..header).ok_or_else(|| {
        idx_error(
            name,
            format!(
                "header announces {ndims} dimensions but the file ends after {} bytes",
                bytes.len()
            ),
        )
    })?;
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let product = |dims: &[usize]| {
        dims.iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| idx_error(name, format!("dimensions {dims:?} overflow")))
    };
    let expected = product(&dims)?;
    let item = product(dims.get(1..).unwrap_or_default())?;
    if expected > MAX_IDX_BYTES || item > MAX_IDX_BYTES {
        return Err(idx_error(
            name,
            format!(
                "dimensions {dims:?} declare {expected} data bytes in items of {item}: more \
                 than the {MAX_IDX_BYTES} read"
            ),
        ));
    }
    Ok((dims, header, expected))
}

fn idx_error(name: &str, message: String) -> DataError {
    DataError::Idx {
        path: name.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn parses_dimensions_and_data() {
        let a = parse_idx("t", &idx(&[2, 3], &[1, 2, 3, 4, 5, 6])).unwrap();
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn truncated_lying_and_foreign_headers_are_refused() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![0, 0], "too short"),
            (idx(&[2, 3], &[1, 2, 3]), "truncated"),
            (idx(&[2], &[1, 2, 3]), "trailing"),
            (vec![1, 0, 8, 1, 0, 0, 0, 1, 7], "magic"),
            (vec![0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0], "f32"),
            (vec![0, 0, 8, 3, 0, 0, 0, 1], "ends after"),
            (vec![0, 0, 8, 0], "zero dimensions"),
            (idx(&[u32::MAX, u32::MAX, u32::MAX], &[]), "overflow"),
            // A zero count makes the total 0, but the items are still bounded.
            (idx(&[0, 65536, 65536], &[]), "items of 4294967296"),
            (idx(&[0, u32::MAX, u32::MAX], &[]), "items of"),
            (idx(&[2, 1 << 30], &[]), "more than"),
        ];
        for (bytes, needle) in cases {
            let e = parse_idx("bad.idx", &bytes).unwrap_err();
            assert!(e.to_string().contains(needle), "{e} lacks {needle}");
            assert!(e.to_string().contains("bad.idx"), "{e}");
        }
    }

    #[test]
    fn reads_gzip_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.idx"); // no .gz suffix on purpose
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&idx(&[3], &[7, 8, 9])).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        assert_eq!(read_idx(&path).unwrap().data, vec![7, 8, 9]);
        std::fs::write(&path, [0x1f, 0x8b, 1, 2, 3]).unwrap();
        assert!(matches!(read_idx(&path), Err(DataError::Idx { .. })));
    }

    #[test]
    fn a_gzip_bomb_is_decompressed_no_further_than_its_header_declares() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb.idx.gz");
        // A header of 3 bytes, then 16 MiB of zeros: about 16 KiB compressed.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&idx(&[3], &[1, 2, 3])).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..16 {
            gz.write_all(&zeros).unwrap();
        }
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
        std::fs::write(&path, &bomb).unwrap();
        let e = read_idx(&path).unwrap_err();
        assert!(
            matches!(&e, DataError::Idx { message, .. } if message.contains("more than the 3 data bytes")),
            "{e}"
        );
        // A header that declares too much is refused before any data is decompressed.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&idx(&[0, 65536, 65536], &[])).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        let e = read_idx(&path).unwrap_err();
        assert!(e.to_string().contains("items of"), "{e}");
    }

    #[test]
    fn files_larger_than_any_idx_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.idx");
        // Sparse: only the size is looked at.
        std::fs::File::create(&path)
            .unwrap()
            .set_len((MAX_IDX_BYTES + 4096) as u64)
            .unwrap();
        let e = read_idx(&path).unwrap_err();
        assert!(
            e.to_string().contains("more than an IDX file may have"),
            "{e}"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(2000))]
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = parse_idx("fuzz", &bytes);
        }

        #[test]
        fn valid_files_round_trip(d0 in 1u32..6, d1 in 1u32..6, seed in 0u8..255) {
            let n = (d0 * d1) as usize;
            let data: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(seed)).collect();
            let a = parse_idx("ok", &idx(&[d0, d1], &data)).unwrap();
            proptest::prop_assert_eq!(a.dims, vec![d0 as usize, d1 as usize]);
            proptest::prop_assert_eq!(a.data, data);
        }
    }
}

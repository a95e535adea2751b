//! Readers and writers for the vector file formats of the ANN benchmark world: `.npy` (f32 or f16,
//! C order, little-endian, 2-D), `.fvecs` and `.ivecs` (the TEXMEX layout: per row an `i32`
//! dimension followed by that many 4-byte values).
//!
//! This module owns only file parsing; it knows nothing of the index. Every header field is
//! checked before a byte of data is interpreted, and every error names the file and what is
//! wrong with it, because these files come from other tools (numpy, ann-benchmarks) and a bad one
//! should be diagnosed from the message alone.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use half::f16;
use half::slice::HalfFloatSliceExt;

/// Errors of the vector file readers and writers; each carries the file's path.
#[derive(Debug, thiserror::Error)]
pub enum VecIoError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file's contents do not match its format.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words a user can act on.
        reason: String,
    },
    /// The file name has no extension this module reads.
    #[error("{path}: unknown vector file type (expected .npy or .fvecs)")]
    UnknownExtension {
        /// The file.
        path: PathBuf,
    },
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, VecIoError>;

fn format_err(path: &Path, reason: impl Into<String>) -> VecIoError {
    VecIoError::Format { path: path.to_path_buf(), reason: reason.into() }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> VecIoError + '_ {
    move |source| VecIoError::Io { path: path.to_path_buf(), source }
}

/// Element type a vector file stored its values in (they are always returned as f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElemType {
    /// IEEE single precision.
    F32,
    /// IEEE half precision.
    F16,
}

impl fmt::Display for ElemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElemType::F32 => "f32",
            ElemType::F16 => "f16",
        })
    }
}

/// A dense row-major matrix of vectors, values widened to f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    /// Number of rows (vectors).
    pub rows: usize,
    /// Components per row.
    pub dim: usize,
    /// `rows * dim` values, row-major.
    pub data: Vec<f32>,
    /// How the file stored them.
    pub source_type: ElemType,
}

impl Vectors {
    /// Row `i` as a slice; panics if `i >= rows` (callers iterate `0..rows`).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Reads `.npy` or `.fvecs` according to the file's extension.
pub fn read_vectors(path: &Path) -> Result<Vectors> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("npy") => read_npy(path),
        Some("fvecs") => read_fvecs(path),
        _ => Err(VecIoError::UnknownExtension { path: path.to_path_buf() }),
    }
}

// ---------------------------------------------------------------------------------------------
// .npy

const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Reads a 2-D, C-order, little-endian f32 (`<f4`) or f16 (`<f2`) `.npy` file (format 1.0-3.0).
pub fn read_npy(path: &Path) -> Result<Vectors> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    parse_npy(path, &bytes)
}

/// Parses the bytes of a `.npy` file; `path` only names the file in errors.
pub fn parse_npy(path: &Path, bytes: &[u8]) -> Result<Vectors> {
    if bytes.len() < 10 || &bytes[..6] != NPY_MAGIC {
        return Err(format_err(path, "not a .npy file (missing \\x93NUMPY magic)"));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    // Version 1 has a u16 header length, versions 2 and 3 a u32 (3 only changes the header's
    // text encoding to UTF-8, which the ASCII dictionary we accept never needs).
    let (header_len, header_start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(format_err(path, "truncated .npy header"));
            }
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        _ => {
            return Err(format_err(
                path,
                format!("unsupported .npy format version {major}.{minor}"),
            ));
        }
    };
    let data_start = header_start
        .checked_add(header_len)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| {
            format_err(
                path,
                format!(
                    "truncated .npy header: header says {header_len} bytes, file has {}",
                    bytes.len().saturating_sub(header_start)
                ),
            )
        })?;
    let header = std::str::from_utf8(&bytes[header_start..data_start])
        .map_err(|_| format_err(path, ".npy header is not valid UTF-8"))?;
    let header = NpyHeader::parse(header).map_err(|reason| format_err(path, reason))?;

    let elem = match header.descr.as_str() {
        "<f4" => ElemType::F32,
        "<f2" => ElemType::F16,
        // Byte-swapping would be easy, but a big-endian file here almost always means the wrong
        // file or a foreign tool; say so rather than guess.
        ">f4" | ">f2" => {
            return Err(format_err(
                path,
                format!("big-endian dtype '{}'; convert with arr.astype('<f4')", header.descr),
            ));
        }
        other => {
            return Err(format_err(
                path,
                format!("dtype '{other}' is not supported (expected '<f4' or '<f2')"),
            ));
        }
    };
    if header.fortran_order {
        return Err(format_err(
            path,
            "array is in Fortran order; save it with np.ascontiguousarray(arr)",
        ));
    }
    let (rows, dim) = match header.shape[..] {
        [rows, dim] => (rows, dim),
        _ => {
            return Err(format_err(
                path,
                format!("expected a 2-D array (rows, dim), got shape {:?}", header.shape),
            ));
        }
    };
    if dim == 0 {
        return Err(format_err(path, "vectors have dimension 0"));
    }
    let elem_size = match elem {
        ElemType::F32 => 4,
        ElemType::F16 => 2,
    };
    let expected = rows
        .checked_mul(dim)
        .and_then(|n| n.checked_mul(elem_size))
        .ok_or_else(|| format_err(path, format!("shape ({rows}, {dim}) overflows")))?;
    let payload = &bytes[data_start..];
    if payload.len() != expected {
        return Err(format_err(
            path,
            format!(
                "shape ({rows}, {dim}) of {elem} needs {expected} data bytes, file has {}{}",
                payload.len(),
                if payload.len() < expected { " (truncated?)" } else { "" }
            ),
        ));
    }
    let data: Vec<f32> = match elem {
        ElemType::F32 => {
            payload.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        }
        ElemType::F16 => {
            let halves: Vec<f16> =
                payload.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]])).collect();
            let mut data = vec![0f32; halves.len()];
            // The slice conversion uses F16C/NEON when the CPU has it, several times faster
            // than converting one value at a time on a 100 MB file.
            halves.convert_to_f32_slice(&mut data);
            data
        }
    };
    Ok(Vectors { rows, dim, data, source_type: elem })
}

/// The three keys of a `.npy` header dictionary, e.g.
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 128), }`.
#[derive(Debug, PartialEq)]
struct NpyHeader {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

impl NpyHeader {
    /// A small parser for the Python-literal subset numpy writes; not `eval`, so anything
    /// else is an error rather than a guess.
    fn parse(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim_end_matches(['\n', ' ', '\0']).trim();
        let inner = text
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .ok_or_else(|| format!(".npy header is not a dictionary: {text:?}"))?;
        let mut descr = None;
        let mut fortran_order = None;
        let mut shape = None;
        let mut rest = inner.trim();
        while !rest.is_empty() {
            let (key, after) = parse_py_str(rest)
                .ok_or_else(|| format!(".npy header: expected a quoted key at {rest:?}"))?;
            let after = after
                .trim_start()
                .strip_prefix(':')
                .ok_or_else(|| format!(".npy header: expected ':' after key {key:?}"))?
                .trim_start();
            let after = match key.as_str() {
                "descr" => {
                    let (v, a) = parse_py_str(after)
                        .ok_or_else(|| ".npy header: 'descr' is not a string".to_string())?;
                    descr = Some(v);
                    a
                }
                "fortran_order" => {
                    if let Some(a) = after.strip_prefix("False") {
                        fortran_order = Some(false);
                        a
                    } else if let Some(a) = after.strip_prefix("True") {
                        fortran_order = Some(true);
                        a
                    } else {
                        return Err(".npy header: 'fortran_order' is not True/False".into());
                    }
                }
                "shape" => {
                    let close = after
                        .find(')')
                        .filter(|_| after.starts_with('('))
                        .ok_or_else(|| ".npy header: 'shape' is not a tuple".to_string())?;
                    let dims = after[1..close]
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| {
                            s.parse::<usize>()
                                .map_err(|_| format!(".npy header: bad shape entry {s:?}"))
                        })
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                    shape = Some(dims);
                    &after[close + 1..]
                }
                other => return Err(format!(".npy header: unexpected key {other:?}")),
            };
            let after = after.trim_start();
            rest = after.strip_prefix(',').unwrap_or(after).trim_start();
            if !after.starts_with(',') && !rest.is_empty() {
                return Err(format!(".npy header: expected ',' at {rest:?}"));
            }
        }
        Ok(NpyHeader {
            descr: descr.ok_or(".npy header has no 'descr'")?,
            fortran_order: fortran_order.ok_or(".npy header has no 'fortran_order'")?,
            shape: shape.ok_or(".npy header has no 'shape'")?,
        })
    }
}

/// Parses a single- or double-quoted Python string without escapes; returns it and the rest.
fn parse_py_str(s: &str) -> Option<(String, &str)> {
    let quote = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = &s[1..];
    let end = body.find(quote)?;
    Some((body[..end].to_string(), &body[end + 1..]))
}

fn npy_header_bytes(descr: &str, rows: usize, dim: usize) -> Vec<u8> {
    let dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
    // numpy pads the header with spaces and a final newline so the data starts on a 64-byte
    // boundary (format 1.0: 10-byte preamble).
    let unpadded = 10 + dict.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let header_len = dict.len() + pad + 1;
    let mut out = Vec::with_capacity(10 + header_len);
    out.extend_from_slice(NPY_MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    out
}

fn check_shape(path: &Path, len: usize, dim: usize) -> Result<usize> {
    if dim == 0 || !len.is_multiple_of(dim) {
        return Err(format_err(path, format!("{len} values do not make rows of dimension {dim}")));
    }
    Ok(len / dim)
}

/// Writes `data` (rows of `dim` values) as a `<f4` `.npy` file (format 1.0).
pub fn write_npy_f32(path: &Path, data: &[f32], dim: usize) -> Result<()> {
    let rows = check_shape(path, data.len(), dim)?;
    let mut out = npy_header_bytes("<f4", rows, dim);
    out.reserve(data.len() * 4);
    data.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
    fs::write(path, out).map_err(io_err(path))
}

/// Writes `data` (rows of `dim` values) as a `<f2` `.npy` file (format 1.0), rounding to f16.
pub fn write_npy_f16(path: &Path, data: &[f32], dim: usize) -> Result<()> {
    let rows = check_shape(path, data.len(), dim)?;
    let mut out = npy_header_bytes("<f2", rows, dim);
    out.reserve(data.len() * 2);
    data.iter().for_each(|v| out.extend_from_slice(&f16::from_f32(*v).to_le_bytes()));
    fs::write(path, out).map_err(io_err(path))
}

// ---------------------------------------------------------------------------------------------
// .fvecs / .ivecs

/// Splits a TEXMEX-layout file into rows of 4-byte words, checking that every row declares the
/// same positive dimension and that the file ends on a row boundary.
fn parse_xvecs<'a>(path: &Path, bytes: &'a [u8], what: &str) -> Result<(usize, Vec<&'a [u8]>)> {
    if bytes.is_empty() {
        return Ok((0, Vec::new()));
    }
    if bytes.len() < 4 {
        return Err(format_err(path, format!("truncated {what}: {} bytes", bytes.len())));
    }
    let first = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if first <= 0 {
        return Err(format_err(
            path,
            format!("row 0 declares dimension {first}; not a valid {what} file"),
        ));
    }
    let dim = first as usize;
    let row_bytes = 4 * (dim + 1);
    if !bytes.len().is_multiple_of(row_bytes) {
        return Err(format_err(
            path,
            format!(
                "{} bytes is not a whole number of rows of dimension {dim} ({row_bytes} bytes \
                 each; truncated or not {what}?)",
                bytes.len()
            ),
        ));
    }
    let mut rows = Vec::with_capacity(bytes.len() / row_bytes);
    for (i, row) in bytes.chunks_exact(row_bytes).enumerate() {
        let d = i32::from_le_bytes([row[0], row[1], row[2], row[3]]);
        if d != first {
            return Err(format_err(
                path,
                format!("row {i} declares dimension {d}, row 0 declared {dim}; rows must agree"),
            ));
        }
        rows.push(&row[4..]);
    }
    Ok((dim, rows))
}

/// Reads an `.fvecs` file (little-endian f32 rows, each prefixed by its `i32` dimension).
pub fn read_fvecs(path: &Path) -> Result<Vectors> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let (dim, rows) = parse_xvecs(path, &bytes, ".fvecs")?;
    if rows.is_empty() {
        return Err(format_err(path, "empty .fvecs file: no vectors"));
    }
    let data = rows
        .iter()
        .flat_map(|r| r.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    Ok(Vectors { rows: rows.len(), dim, data, source_type: ElemType::F32 })
}

/// Reads an `.ivecs` file (e.g. ground-truth neighbour ids), one `Vec<i32>` per row.
pub fn read_ivecs(path: &Path) -> Result<Vec<Vec<i32>>> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let (_, rows) = parse_xvecs(path, &bytes, ".ivecs")?;
    Ok(rows
        .iter()
        .map(|r| r.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        .collect())
}

fn write_xvecs(path: &Path, rows: impl Iterator<Item = Vec<[u8; 4]>>) -> Result<()> {
    let file = fs::File::create(path).map_err(io_err(path))?;
    let mut w = io::BufWriter::new(file);
    for row in rows {
        let d = i32::try_from(row.len()).ok().filter(|d| *d > 0).ok_or_else(|| {
            format_err(path, format!("cannot write a row of length {}", row.len()))
        })?;
        w.write_all(&d.to_le_bytes()).map_err(io_err(path))?;
        for word in row {
            w.write_all(&word).map_err(io_err(path))?;
        }
    }
    w.flush().map_err(io_err(path))
}

/// Writes `data` (rows of `dim` values) as `.fvecs`.
pub fn write_fvecs(path: &Path, data: &[f32], dim: usize) -> Result<()> {
    check_shape(path, data.len(), dim)?;
    write_xvecs(path, data.chunks_exact(dim).map(|r| r.iter().map(|v| v.to_le_bytes()).collect()))
}

/// Writes rows of ids as `.ivecs`; all rows should have the same length to be readable back.
pub fn write_ivecs(path: &Path, rows: &[Vec<i32>]) -> Result<()> {
    write_xvecs(path, rows.iter().map(|r| r.iter().map(|v| v.to_le_bytes()).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    fn sample(rows: usize, dim: usize) -> Vec<f32> {
        // Values exactly representable in f16, so the f16 round trip is lossless.
        (0..rows * dim).map(|i| (i as f32 - 7.0) * 0.25).collect()
    }

    fn assert_format_err(r: Result<impl fmt::Debug>, needle: &str) {
        match r {
            Err(e @ VecIoError::Format { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(needle), "error {msg:?} should mention {needle:?}");
            }
            other => panic!("expected a format error mentioning {needle:?}, got {other:?}"),
        }
    }

    #[test]
    fn npy_f32_round_trip() {
        let dir = tmp();
        let p = dir.path().join("a.npy");
        let data = sample(5, 3);
        write_npy_f32(&p, &data, 3).unwrap();
        let bytes = fs::read(&p).unwrap();
        let header = bytes.len() - 5 * 3 * 4;
        assert_eq!(header % 64, 0, "data must start on a 64-byte boundary");
        let v = read_vectors(&p).unwrap();
        assert_eq!((v.rows, v.dim, v.source_type), (5, 3, ElemType::F32));
        assert_eq!(v.data, data);
        assert_eq!(v.row(1), &data[3..6]);
    }

    #[test]
    fn npy_f16_round_trip() {
        let dir = tmp();
        let p = dir.path().join("a.npy");
        let data = sample(4, 6);
        write_npy_f16(&p, &data, 6).unwrap();
        let v = read_npy(&p).unwrap();
        assert_eq!((v.rows, v.dim, v.source_type), (4, 6, ElemType::F16));
        assert_eq!(v.data, data);
    }

    #[test]
    fn npy_reads_what_numpy_writes() {
        // Bytes of `np.save(f, np.array([[1, 2], [3, 4]], dtype='<f4'))`, numpy 2.x.
        let mut bytes = b"\x93NUMPY\x01\x00v\x00".to_vec();
        let dict = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
        bytes.extend_from_slice(dict);
        bytes.extend(std::iter::repeat_n(b' ', 118 - dict.len() - 1));
        bytes.push(b'\n');
        for v in [1.0f32, 2.0, 3.0, 4.0] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let v = parse_npy(Path::new("x.npy"), &bytes).unwrap();
        assert_eq!((v.rows, v.dim), (2, 2));
        assert_eq!(v.data, vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn npy_version_2_header() {
        let dict = b"{'descr': '<f2', 'fortran_order': False, 'shape': (1, 2)}\n";
        let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
        bytes.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        bytes.extend_from_slice(dict);
        bytes.extend_from_slice(&f16::from_f32(0.5).to_le_bytes());
        bytes.extend_from_slice(&f16::from_f32(-2.0).to_le_bytes());
        let v = parse_npy(Path::new("v2.npy"), &bytes).unwrap();
        assert_eq!(v.data, vec![0.5, -2.0]);
    }

    fn npy_with_header(dict: &str, payload_len: usize) -> Vec<u8> {
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        bytes.extend_from_slice(dict.as_bytes());
        bytes.extend(std::iter::repeat_n(0u8, payload_len));
        bytes
    }

    #[test]
    fn npy_malformed_headers_are_named_errors() {
        let p = Path::new("bad.npy");
        assert_format_err(parse_npy(p, b"PK\x03\x04 not numpy at all"), "magic");
        assert_format_err(parse_npy(p, b"\x93NUMPY\x09\x00\x10\x00"), "version 9.0");
        // Header length points past the end of the file.
        assert_format_err(parse_npy(p, b"\x93NUMPY\x01\x00\xff\x00{'descr'"), "truncated");
        let cases = [
            ("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", 32, "'<f8'"),
            ("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", 16, "big-endian"),
            ("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, "Fortran"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 16, "2-D"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 1), }", 16, "2-D"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 0), }", 0, "dimension 0"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 15, "truncated"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 17, "needs 16"),
            ("{'descr': '<f4', 'fortran_order': False }", 16, "no 'shape'"),
            ("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 2) }", 16, "True/False"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 16, "bad shape"),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'x': 1}",
                16,
                "unexpected key",
            ),
            ("['descr', '<f4']", 16, "not a dictionary"),
            ("{'descr' '<f4'}", 16, "expected ':'"),
        ];
        for (dict, payload, needle) in cases {
            assert_format_err(parse_npy(p, &npy_with_header(dict, payload)), needle);
        }
        // Errors name the file.
        let e = parse_npy(Path::new("/data/q.npy"), b"nope nope nope").unwrap_err();
        assert!(e.to_string().starts_with("/data/q.npy: "), "{e}");
    }

    #[test]
    fn npy_huge_shape_does_not_allocate_or_panic() {
        let dict =
            format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, 2), }}", usize::MAX);
        assert_format_err(parse_npy(Path::new("h.npy"), &npy_with_header(&dict, 8)), "overflows");
    }

    #[test]
    fn fvecs_round_trip_and_dispatch() {
        let dir = tmp();
        let p = dir.path().join("a.fvecs");
        let data = sample(7, 4);
        write_fvecs(&p, &data, 4).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().len(), 7 * (4 + 1) * 4);
        let v = read_vectors(&p).unwrap();
        assert_eq!((v.rows, v.dim), (7, 4));
        assert_eq!(v.data, data);
    }

    #[test]
    fn ivecs_round_trip() {
        let dir = tmp();
        let p = dir.path().join("gt.ivecs");
        let rows = vec![vec![3, 1, 2], vec![0, 9, 8]];
        write_ivecs(&p, &rows).unwrap();
        assert_eq!(read_ivecs(&p).unwrap(), rows);
    }

    #[test]
    fn xvecs_malformed_are_named_errors() {
        let dir = tmp();
        let p = dir.path().join("bad.fvecs");
        let write = |bytes: &[u8]| fs::write(&p, bytes).unwrap();

        write(&[]);
        assert_format_err(read_fvecs(&p), "empty");
        write(&[1, 0]);
        assert_format_err(read_fvecs(&p), "truncated");
        write(&(-3i32).to_le_bytes());
        assert_format_err(read_fvecs(&p), "dimension -3");
        // Last row cut short.
        let mut bytes = Vec::new();
        for _ in 0..2 {
            bytes.extend_from_slice(&2i32.to_le_bytes());
            bytes.extend_from_slice(&[0u8; 8]);
        }
        write(&bytes[..bytes.len() - 3]);
        assert_format_err(read_fvecs(&p), "whole number of rows");
        // Rows disagree on the dimension, with a total length that happens to fit.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&2i32.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 8]);
        bytes.extend_from_slice(&3i32.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 8]);
        write(&bytes);
        assert_format_err(read_fvecs(&p), "row 1 declares dimension 3");
        assert_format_err(read_ivecs(&p), "row 1 declares dimension 3");

        let missing = dir.path().join("missing.ivecs");
        let e = read_ivecs(&missing).unwrap_err();
        assert!(matches!(e, VecIoError::Io { .. }), "{e:?}");
        assert!(e.to_string().contains("missing.ivecs"), "{e}");
    }

    #[test]
    fn unknown_extension() {
        let e = read_vectors(Path::new("vectors.csv")).unwrap_err();
        assert!(matches!(e, VecIoError::UnknownExtension { .. }), "{e:?}");
    }

    #[test]
    fn writers_reject_ragged_data() {
        let dir = tmp();
        let p = dir.path().join("r.npy");
        assert_format_err(write_npy_f32(&p, &[1.0, 2.0, 3.0], 2), "dimension 2");
        assert_format_err(write_fvecs(&p, &[1.0], 0), "dimension 0");
    }
}

//! The sealed segment file format, version 1.
//!
//! ```text
//! offset 0    Header (176 bytes, little-endian, fixed layout), zero-padded to 256
//! offset 256  sections, each starting on a 64-byte boundary, zero-padded between:
//!   0 vectors      count * stored_dim elements (f32 or f16), unit length
//!   1 links0       count * (m0 + 1) u32: [n, neighbour_1 .. neighbour_m0] per node
//!   2 upper_index  (count + 1) u64: node i's upper-layer lists are upper[idx[i]..idx[i+1]]
//!   3 upper        u32 lists of (m + 1) entries per layer above 0, layer 1 first
//!   4 ids          count u32: the caller's id of each node
//!   5 id_index     count (id, node) u32 pairs sorted by id
//!   6 deleted      ceil(count / 64) u64: tombstone bits at sealing time
//! ```
//! `header_crc` is CRC-32C of the header bytes before it; `body_crc` is CRC-32C of every byte
//! after the header (its padding included) to the end of the file. Opening checks only the header and that every section
//! has exactly the size the counts imply and lies inside the file (O(1)); `verify()` checks
//! `body_crc`. Readers bounds-check every id and offset they read from the body, so a file that
//! passes the O(1) checks but has damaged sections gives wrong answers, never a fault.

use std::io::{self, Seek, SeekFrom, Write};
use std::ops::Range;

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::params::{HnswParams, MAX_DIM, MAX_M, SegmentConfig};
use crate::vector::Dtype;

#[cfg(target_endian = "big")]
compile_error!("the segment format is little-endian and this crate maps it directly");

pub(crate) const MAGIC: [u8; 8] = *b"HVSEGMNT";
pub(crate) const VERSION: u32 = 1;
pub(crate) const BODY_START: u64 = 256;
const ALIGN: u64 = 64;
pub(crate) const N_SECTIONS: usize = 7;
/// Levels above this cannot come from the level distribution (p = m^-64).
pub(crate) const MAX_LEVEL: usize = 64;

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct Section {
    pub offset: u64,
    pub len: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct Header {
    pub magic: [u8; 8],
    pub version: u32,
    pub header_len: u32,
    pub dtype: u32,
    pub dim: u32,
    pub stored_dim: u32,
    pub m: u32,
    pub m0: u32,
    pub ef_construction: u32,
    pub count: u32,
    pub max_level: u32,
    pub entry_point: u32,
    pub deleted_count: u32,
    pub seed: u64,
    pub file_len: u64,
    pub sections: [Section; N_SECTIONS],
    pub body_crc: u32,
    pub header_crc: u32,
}

pub(crate) const HEADER_LEN: usize = std::mem::size_of::<Header>();
const _: () = assert!(HEADER_LEN as u64 <= BODY_START);

/// Byte ranges of the sections, checked against the file.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub sections: [Range<usize>; N_SECTIONS],
}

pub(crate) const VECTORS: usize = 0;
pub(crate) const LINKS0: usize = 1;
pub(crate) const UPPER_INDEX: usize = 2;
pub(crate) const UPPER: usize = 3;
pub(crate) const IDS: usize = 4;
pub(crate) const ID_INDEX: usize = 5;
pub(crate) const DELETED: usize = 6;

impl Header {
    pub(crate) fn config(&self) -> Result<SegmentConfig> {
        let dtype = Dtype::from_code(self.dtype)
            .ok_or_else(|| Error::corrupt(format!("unknown dtype code {}", self.dtype)))?;
        let config = SegmentConfig {
            dim: self.dim as usize,
            stored_dim: self.stored_dim as usize,
            dtype,
            hnsw: HnswParams {
                m: self.m as usize,
                ef_construction: self.ef_construction as usize,
                seed: self.seed,
            },
        };
        config.validate().map_err(|e| Error::corrupt(format!("header: {e}")))?;
        if self.m0 as usize != config.hnsw.m0() {
            return Err(Error::corrupt(format!("m0 {} is not 2 * m {}", self.m0, self.m)));
        }
        Ok(config)
    }

    /// The header's bytes up to `header_crc`, which that checksum covers.
    fn crc_input(&self) -> &[u8] {
        &bytemuck::bytes_of(self)[..HEADER_LEN - 4]
    }

    pub(crate) fn seal_crc(&mut self) {
        self.header_crc = crc32c::crc32c(self.crc_input());
    }
}

/// Parses and checks the header of `bytes` in O(1): magic, version, header checksum, parameters,
/// and that every section has exactly the size its counts imply and lies inside the file.
pub(crate) fn parse(bytes: &[u8]) -> Result<(Header, SegmentConfig, Layout)> {
    if bytes.len() < 8 || bytes[..8] != MAGIC {
        return Err(if bytes.len() < 8 {
            Error::corrupt(format!("file is {} bytes, shorter than the magic number", bytes.len()))
        } else {
            Error::BadMagic
        });
    }
    if bytes.len() < BODY_START as usize {
        return Err(Error::corrupt(format!(
            "file is {} bytes, shorter than the {BODY_START}-byte header",
            bytes.len()
        )));
    }
    let header: Header = bytemuck::pod_read_unaligned(&bytes[..HEADER_LEN]);
    // The version is checked before the checksum so that a file from a newer hirevec says so.
    if header.version != VERSION {
        return Err(Error::UnsupportedVersion { found: header.version, supported: VERSION });
    }
    if crc32c::crc32c(header.crc_input()) != header.header_crc {
        return Err(Error::corrupt("header checksum mismatch"));
    }
    if header.header_len as usize != HEADER_LEN {
        return Err(Error::corrupt(format!("header_len {} != {HEADER_LEN}", header.header_len)));
    }
    if header.file_len != bytes.len() as u64 {
        return Err(Error::corrupt(format!(
            "file is {} bytes but its header says {} (truncated or extended)",
            bytes.len(),
            header.file_len
        )));
    }
    let config = header.config()?;
    let count = header.count as u64;
    if header.max_level as usize > MAX_LEVEL {
        return Err(Error::corrupt(format!("max_level {} > {MAX_LEVEL}", header.max_level)));
    }
    if count > 0 && header.entry_point as u64 >= count {
        return Err(Error::corrupt(format!(
            "entry point {} outside {count} nodes",
            header.entry_point
        )));
    }
    if header.deleted_count as u64 > count {
        return Err(Error::corrupt("deleted_count > count"));
    }
    debug_assert!(config.dim <= MAX_DIM && config.hnsw.m <= MAX_M);

    let elem = config.dtype.size() as u64;
    let expected: [Option<u64>; N_SECTIONS] = [
        Some(count * config.stored_dim as u64 * elem),
        Some(count * (config.hnsw.m0() as u64 + 1) * 4),
        Some((count + 1) * 8),
        None, // its length is whatever the index says; checked against upper_index on use
        Some(count * 4),
        Some(count * 8),
        Some(count.div_ceil(64) * 8),
    ];
    let mut sections: [Range<usize>; N_SECTIONS] = Default::default();
    let mut prev_end = BODY_START;
    for (i, (s, want)) in header.sections.iter().zip(expected).enumerate() {
        if let Some(want) = want
            && s.len != want
        {
            return Err(Error::corrupt(format!("section {i} is {} bytes, expected {want}", s.len)));
        }
        let end = s.offset.checked_add(s.len).ok_or_else(|| Error::corrupt("section overflow"))?;
        if s.offset % ALIGN != 0 || s.offset < prev_end || end > header.file_len {
            return Err(Error::corrupt(format!(
                "section {i} at {}..{end} is misplaced (file is {} bytes)",
                s.offset, header.file_len
            )));
        }
        if i == UPPER && s.len % 4 != 0 {
            return Err(Error::corrupt("upper section is not whole u32s"));
        }
        prev_end = end;
        sections[i] = s.offset as usize..end as usize;
    }
    Ok((header, config, Layout { sections }))
}

/// Checks `body_crc` (a full pass over the file).
pub(crate) fn verify_body(header: &Header, bytes: &[u8]) -> Result<()> {
    let body = bytes.get(HEADER_LEN..).unwrap_or_default();
    let crc = crc32c::crc32c(body);
    if crc != header.body_crc {
        return Err(Error::corrupt(format!(
            "body checksum mismatch (stored {:08x}, computed {crc:08x})",
            header.body_crc
        )));
    }
    Ok(())
}

/// A writer that lays sections out on 64-byte boundaries and checksums the body as it goes.
pub(crate) struct SectionWriter<W: Write + Seek> {
    inner: io::BufWriter<W>,
    pos: u64,
    crc: u32,
    pub sections: [Section; N_SECTIONS],
}

impl<W: Write + Seek> SectionWriter<W> {
    pub(crate) fn new(mut w: W) -> io::Result<Self> {
        w.seek(SeekFrom::Start(0))?;
        let mut inner = io::BufWriter::with_capacity(1 << 20, w);
        // Placeholder header; the real one is written last, when the checksums are known.
        inner.write_all(&[0u8; HEADER_LEN])?;
        let mut w = SectionWriter {
            inner,
            pos: HEADER_LEN as u64,
            crc: 0,
            sections: [Section::zeroed(); N_SECTIONS],
        };
        // The padding up to the body is checksummed too: no byte of the file goes unchecked.
        w.put(&[0u8; BODY_START as usize - HEADER_LEN])?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        self.inner.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Starts section `i` at the next aligned offset.
    pub(crate) fn begin(&mut self, i: usize) -> io::Result<()> {
        let pad = self.pos.next_multiple_of(ALIGN) - self.pos;
        self.put(&[0u8; ALIGN as usize][..pad as usize])?;
        self.sections[i] = Section { offset: self.pos, len: 0 };
        Ok(())
    }

    /// Appends to the current section `i`.
    pub(crate) fn write(&mut self, i: usize, bytes: &[u8]) -> io::Result<()> {
        self.sections[i].len += bytes.len() as u64;
        self.put(bytes)
    }

    /// Writes the header and returns the underlying writer and the file length.
    pub(crate) fn finish(mut self, mut header: Header) -> io::Result<(W, u64)> {
        header.sections = self.sections;
        header.body_crc = self.crc;
        header.file_len = self.pos;
        header.seal_crc();
        self.inner.flush()?;
        let mut w = self.inner.into_inner().map_err(|e| e.into_error())?;
        w.seek(SeekFrom::Start(0))?;
        w.write_all(bytemuck::bytes_of(&header))?;
        w.flush()?;
        Ok((w, self.pos))
    }
}

//! The framing shared by every file (and blob) this crate writes for later
//! reading elsewhere: a backup, a snapshot file, a snapshot's data.
//!
//! A frame is a magic string naming what the body is, the format version and
//! a CRC-32 of the body (both little-endian u32), then the body. The magic
//! tells a file of the wrong kind (or one from before framing) from a
//! damaged one; the checksum catches a truncated or damaged body before a
//! byte of it is decoded.

pub(crate) struct Frame {
    pub magic: &'static [u8],
    pub version: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("no header (not this kind of file, or written before files had one)")]
    NoHeader,
    #[error("format {found} is not supported (this build reads format {supported})")]
    UnknownFormat { found: u32, supported: u32 },
    #[error("checksum mismatch (truncated or damaged)")]
    Checksum,
}

impl Frame {
    pub fn header_len(&self) -> usize {
        self.magic.len() + 8
    }

    /// The header of a body whose CRC-32 is `crc` (from `crc32fast`, over
    /// the body alone).
    pub fn header(&self, crc: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.header_len());
        out.extend_from_slice(self.magic);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Room for the header, for a body written after it (see `seal`).
    pub fn placeholder(&self) -> Vec<u8> {
        vec![0; self.header_len()]
    }

    /// Writes the header over the placeholder that `framed` starts with,
    /// for the body that follows it: a large body is framed in place.
    pub fn seal(&self, framed: &mut [u8]) {
        let crc = crc32fast::hash(&framed[self.header_len()..]);
        framed[..self.header_len()].copy_from_slice(&self.header(crc));
    }

    pub fn encode(&self, body: &[u8]) -> Vec<u8> {
        let mut out = self.header(crc32fast::hash(body));
        out.extend_from_slice(body);
        out
    }

    /// The body of a framed `bytes`, once magic, version and checksum agree.
    pub fn decode<'a>(&self, bytes: &'a [u8]) -> Result<&'a [u8], FrameError> {
        if bytes.len() < self.header_len() || !bytes.starts_with(self.magic) {
            return Err(FrameError::NoHeader);
        }
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let found = word(self.magic.len());
        if found != self.version {
            return Err(FrameError::UnknownFormat {
                found,
                supported: self.version,
            });
        }
        let body = &bytes[self.header_len()..];
        if crc32fast::hash(body) != word(self.magic.len() + 4) {
            return Err(FrameError::Checksum);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST: Frame = Frame {
        magic: b"test\n",
        version: 3,
    };

    #[test]
    fn a_frame_round_trips_and_refuses_any_change() {
        let framed = TEST.encode(b"hello");
        assert_eq!(TEST.decode(&framed), Ok(&b"hello"[..]));
        for at in 0..framed.len() {
            let mut damaged = framed.clone();
            damaged[at] ^= 0x01;
            assert!(TEST.decode(&damaged).is_err(), "byte {at} changed");
        }
        assert_eq!(
            TEST.decode(&framed[..framed.len() - 1]),
            Err(FrameError::Checksum)
        );
        assert_eq!(TEST.decode(b"hello"), Err(FrameError::NoHeader));
        let mut sealed = TEST.placeholder();
        sealed.extend_from_slice(b"hello");
        TEST.seal(&mut sealed);
        assert_eq!(sealed, framed);
        let other = Frame {
            magic: TEST.magic,
            version: 4,
        };
        assert_eq!(
            TEST.decode(&other.encode(b"hello")),
            Err(FrameError::UnknownFormat {
                found: 4,
                supported: 3
            })
        );
    }
}

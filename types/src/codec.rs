//! One binary encoding for everything stored or sent between nodes.
//!
//! Decoding is bounded by the input: bincode allocates a string or byte
//! buffer as long as the length written before it, so without a limit ten
//! bytes claiming a 16 TiB string abort the process. Here every decode runs
//! with a limit of at most 16 times the bytes it was given (never under
//! 4 KiB), so what a sender claims can never cost more memory than what it
//! actually sent. (Sequences are safe already: serde preallocates at most
//! 1 MiB for a sequence, whatever length it claims.)

use bincode::config::{Config, Configuration};
use bincode::error::DecodeError;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn config() -> Configuration {
    bincode::config::standard()
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, bincode::error::EncodeError> {
    bincode::serde::encode_to_vec(value, config())
}

/// Encodes straight into a writer (a file), without a buffer of the whole.
pub fn encode_into<T: Serialize, W: std::io::Write>(
    value: &T,
    out: &mut W,
) -> Result<usize, bincode::error::EncodeError> {
    bincode::serde::encode_into_std_write(value, out, config())
}

/// Decodes all of `bytes` as one `T`; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    // The smallest limit of the ladder that is at least the input's size.
    macro_rules! within {
        ($($shift:literal),*) => {
            match bytes.len() {
                $(n if n <= 1usize << $shift => decode_limited::<T, { 1usize << ($shift + 4) }>(bytes),)*
                n => Err(DecodeError::OtherString(format!("{n} bytes is too large to decode"))),
            }
        };
    }
    within!(8, 12, 16, 20, 24, 28, 32, 36)
}

fn decode_limited<T: DeserializeOwned, const LIMIT: usize>(bytes: &[u8]) -> Result<T, DecodeError> {
    decode_with(bytes, config().with_limit::<LIMIT>())
}

fn decode_with<T: DeserializeOwned, C: Config>(bytes: &[u8], config: C) -> Result<T, DecodeError> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, config)?;
    if read != bytes.len() {
        return Err(DecodeError::OtherString(format!(
            "{} trailing bytes",
            bytes.len() - read
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A string claiming 16 TiB in ten bytes: refused, not allocated.
    #[test]
    fn a_claimed_length_beyond_the_input_is_refused_without_allocating() {
        let frame = [0x00, 0xfd, 0, 0, 0, 0, 0, 0x10, 0, 0];
        let err = decode::<(u8, String)>(&frame).unwrap_err();
        assert!(matches!(err, DecodeError::LimitExceeded), "{err:?}");
        // A sequence: serde preallocates at most 1 MiB, then the input ends.
        let err = decode::<Vec<u8>>(&frame[1..]).unwrap_err();
        assert!(matches!(err, DecodeError::UnexpectedEnd { .. }), "{err:?}");
    }

    #[test]
    fn values_of_every_size_round_trip() {
        for len in [0usize, 1, 200, 5000, 70_000, 3 << 20] {
            let value = ("x".repeat(len), vec![7u8; len], len as u64);
            let bytes = encode(&value).unwrap();
            assert_eq!(decode::<(String, Vec<u8>, u64)>(&bytes).unwrap(), value);
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&5u32).unwrap();
        bytes.push(0);
        assert!(decode::<u32>(&bytes).is_err());
    }
}

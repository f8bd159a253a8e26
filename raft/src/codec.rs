//! One binary encoding for everything stored or sent between nodes.

use serde::de::DeserializeOwned;
use serde::Serialize;

fn config() -> bincode::config::Configuration {
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

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, bincode::error::DecodeError> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, config())?;
    if read != bytes.len() {
        return Err(bincode::error::DecodeError::OtherString(format!(
            "{} trailing bytes",
            bytes.len() - read
        )));
    }
    Ok(value)
}

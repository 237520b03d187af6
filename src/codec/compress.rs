//! Frame payload compression: the core's delta + run-length scheme (header flag
//! 0x01), which every peer must read, and lz4 (flag 0x08), raywire's own, used only
//! when both ends agreed in the handshake.
//!
//! Both put the uncompressed size first, as a little-endian `u32`, then the
//! compressed bytes.

use super::DecodeError;

/// Payloads at or below this size are never compressed by the core.
pub const CORE_COMPRESS_THRESHOLD: usize = 2000;

/// Longest run one run-length token can carry.
const MAX_RUN: usize = 127;
/// Longest literal stretch one token can carry.
const MAX_LITERAL: usize = 128;

/// Compresses `payload` the way the core does, returning the compressed payload
/// (size prefix included), or `None` when the core would send it uncompressed:
/// `payload` no longer than `threshold`, or compression does not make it smaller.
/// The output is byte-for-byte what the core itself produces.
pub fn core_compress(payload: &[u8], threshold: usize) -> Option<Vec<u8>> {
    let len = payload.len();
    if len <= threshold || len > u32::MAX as usize {
        return None;
    }
    // The stream is over the byte-wise differences of the payload: a vector of slowly
    // changing numbers becomes long runs of equal bytes.
    let delta = |i: usize| -> u8 {
        if i == 0 {
            payload[0]
        } else {
            payload[i].wrapping_sub(payload[i - 1])
        }
    };
    let mut out = Vec::with_capacity(len / 2 + 4);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    let body_cap = len; // The core gives up once its output would exceed the input.
    let starts_run = |i: usize| i + 1 < len && delta(i) == delta(i + 1);
    let mut i = 0;
    while i < len {
        if starts_run(i) {
            let v = delta(i);
            let mut run = 1;
            while i + run < len && delta(i + run) == v && run < MAX_RUN {
                run += 1;
            }
            if out.len() - 4 + 2 > body_cap {
                return None;
            }
            out.push(run as u8);
            out.push(v);
            i += run;
        } else {
            let start = i;
            while i < len && i - start < MAX_LITERAL && !starts_run(i) {
                i += 1;
            }
            let n = i - start;
            if out.len() - 4 + 1 + n > body_cap {
                return None;
            }
            out.push((n as u8).wrapping_neg());
            out.extend((start..i).map(delta));
        }
    }
    let body = out.len() - 4;
    // The core sends compressed only when it saves more than the 4-byte prefix.
    (body < len && body + 4 < len).then_some(out)
}

fn split_size(payload: &[u8], max: usize) -> Result<(usize, &[u8]), DecodeError> {
    let (size, body) = payload
        .split_first_chunk::<4>()
        .ok_or(DecodeError::Truncated {
            offset: 0,
            needed: 4,
            available: payload.len(),
        })?;
    let size = u32::from_le_bytes(*size) as usize;
    if size == 0 {
        return Err(DecodeError::BadCompression("declared size 0".into()));
    }
    if size > max {
        return Err(DecodeError::FrameTooLarge {
            size: size as u64,
            max: max as u64,
        });
    }
    Ok((size, body))
}

/// Inflates a payload compressed with [`core_compress`] (or by the core), refusing
/// to produce more than `max` bytes or more than the input could encode.
pub fn core_decompress(payload: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
    let size = core_inflated_len(payload, max)?;
    let mut out = vec![0u8; size];
    core_decompress_into(payload, &mut out)?;
    Ok(out)
}

/// The size a payload compressed with the core's scheme inflates to, checked
/// against `max` and against what its bytes could encode (each 2-byte run token
/// yields at most 127 bytes: a larger claim is a lie, and must not become an
/// allocation).
pub fn core_inflated_len(payload: &[u8], max: usize) -> Result<usize, DecodeError> {
    let (size, body) = split_size(payload, max)?;
    let ceiling = body.len().div_ceil(2).saturating_mul(MAX_RUN);
    if size > ceiling {
        return Err(DecodeError::DecompressedSizeMismatch {
            expected: size,
            got: ceiling,
        });
    }
    Ok(size)
}

/// Inflates a payload compressed with the core's scheme into `out`, which must
/// be exactly as long as the size the payload declares
/// ([`core_inflated_len`]): a caller places the bytes where they will be
/// decoded (an aligned buffer) with no second copy.
pub fn core_decompress_into(payload: &[u8], out: &mut [u8]) -> Result<(), DecodeError> {
    let (size, body) = split_size(payload, usize::MAX)?;
    if size != out.len() {
        return Err(DecodeError::DecompressedSizeMismatch {
            expected: size,
            got: out.len(),
        });
    }
    let overrun = |got: usize| DecodeError::DecompressedSizeMismatch {
        expected: size,
        got,
    };
    // Each token writes a slice of `out` in one loop: the running sum of the
    // deltas is the only dependency between bytes.
    let (mut o, mut i, mut prev) = (0usize, 0usize, 0u8);
    while i < body.len() && o < size {
        let count = body[i] as i8;
        i += 1;
        if count > 0 {
            let n = count as usize;
            let d = *body
                .get(i)
                .ok_or_else(|| DecodeError::BadCompression("run token without its byte".into()))?;
            i += 1;
            let dst = out.get_mut(o..o + n).ok_or_else(|| overrun(o + n))?;
            if d == 0 {
                // The common run: a repeated byte, one memset.
                dst.fill(prev);
            } else {
                for x in dst {
                    prev = prev.wrapping_add(d);
                    *x = prev;
                }
            }
            o += n;
        } else {
            let n = usize::from(count.unsigned_abs());
            let lit = body
                .get(i..i + n)
                .ok_or_else(|| DecodeError::BadCompression("literal runs past the end".into()))?;
            let dst = out.get_mut(o..o + n).ok_or_else(|| overrun(o + n))?;
            for (x, &d) in dst.iter_mut().zip(lit) {
                prev = prev.wrapping_add(d);
                *x = prev;
            }
            i += n;
            o += n;
        }
    }
    if o != size {
        return Err(overrun(o));
    }
    Ok(())
}

/// Compresses `payload` with lz4 (block format, size prefix first). `None` when
/// that would not make it smaller.
pub fn lz4_compress(payload: &[u8]) -> Option<Vec<u8>> {
    if payload.len() > u32::MAX as usize {
        return None;
    }
    let out = lz4_flex::block::compress_prepend_size(payload);
    (out.len() < payload.len()).then_some(out)
}

/// Largest expansion an lz4 block can encode per input byte.
const LZ4_MAX_RATIO: usize = 255;

/// Inflates an [`lz4_compress`]ed payload, refusing more than `max` bytes or more
/// than the input could encode.
pub fn lz4_decompress(payload: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
    let size = lz4_inflated_len(payload, max)?;
    let mut out = vec![0u8; size];
    lz4_decompress_into(payload, &mut out)?;
    Ok(out)
}

/// The size an [`lz4_compress`]ed payload inflates to, checked against `max` and
/// against the most an lz4 block of its length can encode.
pub fn lz4_inflated_len(payload: &[u8], max: usize) -> Result<usize, DecodeError> {
    let (size, body) = split_size(payload, max)?;
    let ceiling = body.len().saturating_mul(LZ4_MAX_RATIO);
    if size > ceiling {
        return Err(DecodeError::DecompressedSizeMismatch {
            expected: size,
            got: ceiling,
        });
    }
    Ok(size)
}

/// Inflates an [`lz4_compress`]ed payload into `out`, exactly as long as the size
/// it declares ([`lz4_inflated_len`]).
pub fn lz4_decompress_into(payload: &[u8], out: &mut [u8]) -> Result<(), DecodeError> {
    let (size, body) = split_size(payload, usize::MAX)?;
    if size != out.len() {
        return Err(DecodeError::DecompressedSizeMismatch {
            expected: size,
            got: out.len(),
        });
    }
    let got = lz4_flex::block::decompress_into(body, out)
        .map_err(|e| DecodeError::BadCompression(e.to_string()))?;
    if got != size {
        return Err(DecodeError::DecompressedSizeMismatch {
            expected: size,
            got,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_scheme_round_trips() {
        let data: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i as i64).to_le_bytes())
            .collect();
        let c = core_compress(&data, CORE_COMPRESS_THRESHOLD).expect("compressible");
        assert!(c.len() < data.len());
        assert_eq!(core_decompress(&c, usize::MAX).unwrap(), data);
        assert!(core_compress(&data[..100], CORE_COMPRESS_THRESHOLD).is_none());
        let noise: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        if let Some(c) = core_compress(&noise, 0) {
            assert_eq!(core_decompress(&c, usize::MAX).unwrap(), noise);
        }
    }

    #[test]
    fn core_decompress_rejects_lies() {
        // Claims 2^31 bytes from a 6-byte body: refused before allocating.
        let mut p = (1u32 << 31).to_le_bytes().to_vec();
        p.extend_from_slice(&[127, 0, 127, 0, 127, 0]);
        assert!(matches!(
            core_decompress(&p, usize::MAX),
            Err(DecodeError::DecompressedSizeMismatch { .. })
        ));
        assert!(core_decompress(&[1, 0], 10).is_err());
        assert!(matches!(
            core_decompress(&[0, 0, 0, 0], 10),
            Err(DecodeError::BadCompression(_))
        ));
        let mut p = 10u32.to_le_bytes().to_vec();
        p.extend_from_slice(&[5, 1]);
        assert!(matches!(
            core_decompress(&p, 100),
            Err(DecodeError::DecompressedSizeMismatch {
                expected: 10,
                got: 5
            })
        ));
    }

    #[test]
    fn lz4_round_trips_and_bounds() {
        let data = vec![7u8; 100_000];
        let c = lz4_compress(&data).unwrap();
        assert_eq!(lz4_decompress(&c, usize::MAX).unwrap(), data);
        assert!(matches!(
            lz4_decompress(&c, 1000),
            Err(DecodeError::FrameTooLarge { .. })
        ));
        let mut lie = c.clone();
        lie[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(lz4_decompress(&lie, usize::MAX).is_err());
    }
}

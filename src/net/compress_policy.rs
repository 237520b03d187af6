//! When compressing a frame makes its bytes leave sooner: a sans-IO decision,
//! made per frame from two measurements the sender already has.
//!
//! # The model
//!
//! A frame of `N` payload bytes sent raw takes `N / D` seconds to leave, where
//! `D` is how fast the socket drains (bytes per second, estimated by
//! [`DrainEstimator`] from the timings of recent writes that the socket, not
//! the sender, held back). Compressed to `r * N` bytes (`r` the ratio a sample
//! of the payload reached, see [`CompressionSample`]) by a compressor that
//! reads `C` bytes per second, and inflated by the receiver at `Z` bytes per
//! second, it takes
//!
//! - one pass after the other ([`Overlap::Serial`]):
//!   `N / C + r N / D + N / Z`;
//! - chunk by chunk, each chunk written as soon as it is compressed and
//!   inflated as soon as it arrives ([`Overlap::Pipelined`], chunks of `c`
//!   bytes): the slowest stage sets the pace, and one chunk's compression and
//!   inflation are the pipeline's fill and drain,
//!   `max(N / C, r N / D, N / Z) + c / C + c / Z`.
//!
//! The frame is compressed when that time, plus a safety margin, is below the
//! raw time. A fast link (loopback, an unshaped veth at ~3 GB/s) therefore
//! sends raw even when the data compresses well, a 1 Gbit/s link compresses
//! small integers, and data that does not compress goes raw everywhere.
//!
//! Two floors sit under the timing rule, never in place of it: frames shorter
//! than [`PolicyConfig::min_len`] go raw (the fixed cost of a compressed frame
//! is not worth it), and so does a payload whose sample did not shrink to
//! [`PolicyConfig::max_ratio`] of its size (by default one half, the rule kdb+
//! applies on its own). Without a drain estimate yet, the frame goes raw: the
//! first frames on a connection measure the link.
//!
//! Everything here is arithmetic on numbers the caller passes in; nothing
//! reads a clock or a socket, so the decision is cheap (a few float
//! operations) and testable with figures.

use std::time::Duration;

/// A configuration that cannot describe a policy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The size floor must be a ratio in `(0, 1]`.
    #[error("max_ratio {0} is not in (0, 1]: give the largest compressed/raw ratio worth sending")]
    BadRatio(f64),
    /// The margin must be a finite, non-negative fraction.
    #[error(
        "margin {0} is not a finite value >= 0: give the fraction the compressed time must win by"
    )]
    BadMargin(f64),
    /// The smoothing weight must be in `(0, 1]`.
    #[error("alpha {0} is not in (0, 1]: give the weight of the newest drain sample")]
    BadAlpha(f64),
    /// A speed must be positive and finite.
    #[error("{what} speed {value} bytes/s is not positive and finite")]
    BadSpeed {
        /// Which speed (`compress`, `decompress`).
        what: &'static str,
        /// The value given.
        value: f64,
    },
}

/// Whether compression and sending overlap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Overlap {
    /// The whole frame is compressed, then sent, then inflated.
    Serial,
    /// Independent chunks of `chunk` bytes are compressed, sent and inflated
    /// as they become ready.
    Pipelined {
        /// Uncompressed bytes per chunk.
        chunk: usize,
    },
}

/// How fast the codec runs, on the sender and on the receiver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodecSpeed {
    /// Uncompressed bytes the sender compresses per second (all the threads
    /// it gives the job together).
    pub compress_bps: f64,
    /// Uncompressed bytes the receiver restores per second.
    pub decompress_bps: f64,
}

impl CodecSpeed {
    /// Check that both speeds are positive and finite.
    pub fn validate(&self) -> Result<(), PolicyError> {
        for (what, value) in [
            ("compress", self.compress_bps),
            ("decompress", self.decompress_bps),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(PolicyError::BadSpeed { what, value });
            }
        }
        Ok(())
    }
}

/// The policy's fixed settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicyConfig {
    /// Frames with fewer payload bytes than this are sent raw.
    pub min_len: usize,
    /// Largest compressed/raw ratio (of the sample) worth compressing for;
    /// 0.5 is kdb+'s "only if it halves the size".
    pub max_ratio: f64,
    /// Fraction by which the compressed time must beat the raw time, so that
    /// estimation noise does not flip frames that are a near tie.
    pub margin: f64,
    /// How the sender and receiver schedule the codec.
    pub overlap: Overlap,
}

impl Default for PolicyConfig {
    /// 2000 bytes (the core's own threshold), ratio 0.5, 10 % margin,
    /// pipelined 1 MiB chunks.
    fn default() -> Self {
        PolicyConfig {
            min_len: 2000,
            max_ratio: 0.5,
            margin: 0.1,
            overlap: Overlap::Pipelined { chunk: 1 << 20 },
        }
    }
}

impl PolicyConfig {
    /// Check the ratio and margin.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.max_ratio.is_nan() || self.max_ratio <= 0.0 || self.max_ratio > 1.0 {
            return Err(PolicyError::BadRatio(self.max_ratio));
        }
        if !(self.margin.is_finite() && self.margin >= 0.0) {
            return Err(PolicyError::BadMargin(self.margin));
        }
        Ok(())
    }
}

/// What a sample of the payload showed: `raw` bytes became `compressed`
/// bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionSample {
    /// Bytes fed to the compressor.
    pub raw: usize,
    /// Bytes it produced.
    pub compressed: usize,
}

impl CompressionSample {
    /// Compressed over raw size; 1.0 for an empty sample (nothing learned, so
    /// nothing to gain).
    pub fn ratio(&self) -> f64 {
        if self.raw == 0 {
            1.0
        } else {
            self.compressed as f64 / self.raw as f64
        }
    }

    /// Compress up to `probes` evenly spaced windows of `window` bytes of
    /// `payload` with lz4 (the codec raywire peers negotiate) and total the
    /// sizes. A few 16 KiB windows tell small integers from random floats at
    /// a small fraction of the cost of compressing the frame.
    pub fn lz4(payload: &[u8], probes: usize, window: usize) -> CompressionSample {
        let mut sample = CompressionSample {
            raw: 0,
            compressed: 0,
        };
        if payload.is_empty() || probes == 0 || window == 0 {
            return sample;
        }
        let window = window.min(payload.len());
        let span = payload.len() - window;
        let probes = probes.min(payload.len() / window).max(1);
        for i in 0..probes {
            // Evenly spread starts, the last one at the end of the payload.
            let start = if probes == 1 {
                0
            } else {
                span / (probes - 1) * i
            };
            let slice = &payload[start..start + window];
            sample.raw += slice.len();
            sample.compressed += lz4_flex::block::compress(slice).len();
        }
        sample
    }
}

/// Estimates how fast a socket drains, from writes the socket held back.
///
/// Feed it only spans in which the socket was the bottleneck: from the moment
/// a write would block (the send buffer is full) to when `bytes` more had
/// been accepted. A write that lands in an empty send buffer returns at
/// memory speed and says nothing about the link, and samples shorter than
/// [`DrainEstimator::MIN_SAMPLE_BYTES`] measure the system call more than the
/// link; both are ignored. The estimate is an exponentially weighted mean of
/// the sampled rates, so it follows a link that is shaped down (or freed) in
/// a few samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrainEstimator {
    alpha: f64,
    rate: Option<f64>,
}

impl DrainEstimator {
    /// Samples of fewer bytes than this are ignored.
    pub const MIN_SAMPLE_BYTES: usize = 64 * 1024;

    /// An estimator giving weight `alpha` (in `(0, 1]`) to each new sample.
    pub fn new(alpha: f64) -> Result<DrainEstimator, PolicyError> {
        if alpha.is_nan() || alpha <= 0.0 || alpha > 1.0 {
            return Err(PolicyError::BadAlpha(alpha));
        }
        Ok(DrainEstimator { alpha, rate: None })
    }

    /// Record that the socket took `bytes` in `elapsed` while it was the
    /// bottleneck. Returns whether the sample was used.
    pub fn record(&mut self, bytes: usize, elapsed: Duration) -> bool {
        let secs = elapsed.as_secs_f64();
        if bytes < Self::MIN_SAMPLE_BYTES || secs <= 0.0 {
            return false;
        }
        let sample = bytes as f64 / secs;
        self.rate = Some(match self.rate {
            None => sample,
            Some(old) => old + self.alpha * (sample - old),
        });
        true
    }

    /// The estimated drain rate in bytes per second; `None` before the first
    /// usable sample.
    pub fn bytes_per_sec(&self) -> Option<f64> {
        self.rate
    }
}

impl Default for DrainEstimator {
    /// Weight 0.25 per sample.
    fn default() -> Self {
        DrainEstimator {
            alpha: 0.25,
            rate: None,
        }
    }
}

/// Why a frame goes the way it goes; every variant but [`Verdict::Compress`]
/// means "send raw".
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Compressing is expected to finish sooner.
    Compress {
        /// Expected seconds raw.
        raw_secs: f64,
        /// Expected seconds compressed.
        compressed_secs: f64,
    },
    /// The frame is shorter than the size floor.
    TooSmall,
    /// The sample did not shrink to the ratio floor.
    PoorRatio(f64),
    /// No drain estimate yet.
    UnknownLink,
    /// The link is fast enough that raw bytes leave sooner (or too close a
    /// tie to be worth it).
    LinkFaster {
        /// Expected seconds raw.
        raw_secs: f64,
        /// Expected seconds compressed.
        compressed_secs: f64,
    },
}

impl Verdict {
    /// Whether the frame should be compressed.
    pub fn compress(&self) -> bool {
        matches!(self, Verdict::Compress { .. })
    }
}

/// The per-frame decision: [`PolicyConfig`] plus the codec's speed.
///
/// ```
/// use raywire::net::compress_policy::{CodecSpeed, CompressPolicy, PolicyConfig};
///
/// let policy = CompressPolicy::new(
///     PolicyConfig::default(),
///     CodecSpeed { compress_bps: 400e6, decompress_bps: 2e9 },
/// )
/// .unwrap();
/// // 80 MB that compress to a quarter: worth it at 1 Gbit/s, not at 3 GB/s.
/// assert!(policy.decide(80_000_000, 0.25, Some(125e6)).compress());
/// assert!(!policy.decide(80_000_000, 0.25, Some(3e9)).compress());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompressPolicy {
    config: PolicyConfig,
    speed: CodecSpeed,
}

impl CompressPolicy {
    /// A policy with these settings.
    pub fn new(config: PolicyConfig, speed: CodecSpeed) -> Result<CompressPolicy, PolicyError> {
        config.validate()?;
        speed.validate()?;
        Ok(CompressPolicy { config, speed })
    }

    /// The settings.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Expected seconds for `len` bytes compressed to `ratio` to leave a
    /// socket draining `drain_bps` and be restored (see the module docs).
    pub fn compressed_secs(&self, len: usize, ratio: f64, drain_bps: f64) -> f64 {
        let n = len as f64;
        let c = self.speed.compress_bps;
        let z = self.speed.decompress_bps;
        let wire = ratio * n / drain_bps;
        match self.config.overlap {
            Overlap::Serial => n / c + wire + n / z,
            Overlap::Pipelined { chunk } => {
                let chunk = (chunk.max(1) as f64).min(n);
                (n / c).max(wire).max(n / z) + chunk / c + chunk / z
            }
        }
    }

    /// Decide for a frame of `len` payload bytes whose sample compressed to
    /// `ratio`, on a socket that drains `drain_bps` bytes per second
    /// (`None`: not measured yet).
    pub fn decide(&self, len: usize, ratio: f64, drain_bps: Option<f64>) -> Verdict {
        if len < self.config.min_len {
            return Verdict::TooSmall;
        }
        // NaN fails this test too, and is treated as "does not compress".
        if ratio.is_nan() || ratio > self.config.max_ratio {
            return Verdict::PoorRatio(ratio);
        }
        let Some(drain) = drain_bps.filter(|d| d.is_finite() && *d > 0.0) else {
            return Verdict::UnknownLink;
        };
        let raw_secs = len as f64 / drain;
        let compressed_secs = self.compressed_secs(len, ratio.max(0.0), drain);
        if compressed_secs * (1.0 + self.config.margin) < raw_secs {
            Verdict::Compress {
                raw_secs,
                compressed_secs,
            }
        } else {
            Verdict::LinkFaster {
                raw_secs,
                compressed_secs,
            }
        }
    }

    /// [`CompressPolicy::decide`] with the ratio of `sample` and the estimate
    /// of `drain`.
    pub fn decide_sampled(
        &self,
        len: usize,
        sample: &CompressionSample,
        drain: &DrainEstimator,
    ) -> Verdict {
        self.decide(len, sample.ratio(), drain.bytes_per_sec())
    }

    /// The drain rate below which a frame compressing to `ratio` is worth
    /// compressing (ignoring the floors and the margin), in bytes per second;
    /// `None` when no link is slow enough (ratio 1 or more, or not a number).
    ///
    /// Serial: `N/D > N/C + rN/D + N/Z` gives `D < (1 - r) / (1/C + 1/Z)`.
    /// Pipelined, large frames: the wire stage must set the pace and beat the
    /// raw wire, and the codec stages must be faster than the raw wire:
    /// `D < min(C, Z)` (the `r N / D` term is always below `N / D`).
    pub fn breakeven_bps(&self, ratio: f64) -> Option<f64> {
        if ratio.is_nan() || ratio >= 1.0 {
            return None;
        }
        let c = self.speed.compress_bps;
        let z = self.speed.decompress_bps;
        match self.config.overlap {
            Overlap::Serial => Some((1.0 - ratio.max(0.0)) / (1.0 / c + 1.0 / z)),
            Overlap::Pipelined { .. } => Some(c.min(z)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: f64 = 1e6;
    /// The issue's column: 80 MB.
    const COLUMN: usize = 80_000_000;
    /// The issue's measured single-thread lz4 speed, and a typical inflate.
    const ONE_THREAD: CodecSpeed = CodecSpeed {
        compress_bps: 400.0 * MB,
        decompress_bps: 2000.0 * MB,
    };
    const GBIT: f64 = 125.0 * MB;
    const VETH: f64 = 2886.0 * MB;

    fn policy(overlap: Overlap, speed: CodecSpeed) -> CompressPolicy {
        let config = PolicyConfig {
            overlap,
            ..PolicyConfig::default()
        };
        CompressPolicy::new(config, speed).unwrap()
    }

    #[test]
    fn serial_single_thread_matches_the_issue_figures() {
        let p = policy(Overlap::Serial, ONE_THREAD);
        // 80 MB at a quarter: 0.2 s + 0.16 s + 0.04 s = 0.40 s against 0.64 s raw.
        let v = p.decide(COLUMN, 0.25, Some(GBIT));
        let Verdict::Compress {
            raw_secs,
            compressed_secs,
        } = v
        else {
            panic!("expected Compress at 1 Gbit/s, got {v:?}");
        };
        assert!((raw_secs - 0.64).abs() < 1e-9);
        assert!((compressed_secs - 0.40).abs() < 1e-9);
        // On the unshaped veth, raw takes 27.7 ms and compression alone 200 ms.
        assert!(matches!(
            p.decide(COLUMN, 0.25, Some(VETH)),
            Verdict::LinkFaster { .. }
        ));
    }

    #[test]
    fn pipelined_pace_is_the_slowest_stage() {
        let p = policy(Overlap::Pipelined { chunk: 1_000_000 }, ONE_THREAD);
        // max(0.2, 0.16, 0.04) + 1 MB / 400 MB/s + 1 MB / 2000 MB/s = 0.2030 s.
        let t = p.compressed_secs(COLUMN, 0.25, GBIT);
        assert!((t - 0.2030).abs() < 1e-9, "{t}");
        // A frame smaller than a chunk is one chunk: no fill beyond itself.
        let small = p.compressed_secs(100_000, 0.25, GBIT);
        let expect =
            100_000.0 / (400.0 * MB) + 100_000.0 / (2000.0 * MB) + 100_000.0 / (400.0 * MB);
        assert!((small - expect).abs() < 1e-12, "{small} vs {expect}");
    }

    #[test]
    fn parallel_compression_still_loses_to_an_unshaped_veth() {
        // Eight threads at 400 MB/s each: 3.2 GB/s against a 2.9 GB/s link;
        // the 10 % margin keeps the near tie raw.
        let eight = CodecSpeed {
            compress_bps: 3200.0 * MB,
            decompress_bps: 8000.0 * MB,
        };
        let p = policy(Overlap::Pipelined { chunk: 1 << 20 }, eight);
        assert!(!p.decide(COLUMN, 0.25, Some(VETH)).compress());
        assert!(p.decide(COLUMN, 0.25, Some(GBIT)).compress());
        // A 100 Mbit/s link too.
        assert!(p.decide(COLUMN, 0.25, Some(12.5 * MB)).compress());
    }

    #[test]
    fn floors_apply_before_timing() {
        let p = policy(Overlap::Serial, ONE_THREAD);
        assert_eq!(p.decide(1999, 0.01, Some(1.0 * MB)), Verdict::TooSmall);
        assert!(p.decide(2000, 0.01, Some(1.0 * MB)).compress());
        // 0.6 would pay on a 1 MB/s link, but does not halve the size.
        assert_eq!(
            p.decide(COLUMN, 0.6, Some(1.0 * MB)),
            Verdict::PoorRatio(0.6)
        );
        assert!(
            !p.decide(COLUMN, f64::NAN, Some(GBIT)).compress(),
            "a NaN ratio never compresses"
        );
        assert_eq!(p.decide(COLUMN, 0.25, None), Verdict::UnknownLink);
        assert_eq!(p.decide(COLUMN, 0.25, Some(0.0)), Verdict::UnknownLink);
        assert_eq!(
            p.decide(COLUMN, 0.25, Some(f64::INFINITY)),
            Verdict::UnknownLink
        );
    }

    #[test]
    fn breakeven_separates_the_decisions() {
        let p = policy(Overlap::Serial, ONE_THREAD);
        // (1 - 0.25) / (1/400 + 1/2000) MB/s = 0.75 / 0.003 = 250 MB/s.
        let b = p.breakeven_bps(0.25).unwrap();
        assert!((b - 250.0 * MB).abs() < 1.0, "{b}");
        let just_below = Some(b * 0.8);
        let just_above = Some(b * 1.2);
        assert!(p.decide(COLUMN, 0.25, just_below).compress());
        assert!(!p.decide(COLUMN, 0.25, just_above).compress());
        assert_eq!(p.breakeven_bps(1.0), None);
        let q = policy(Overlap::Pipelined { chunk: 1 << 20 }, ONE_THREAD);
        assert_eq!(q.breakeven_bps(0.25), Some(400.0 * MB));
    }

    #[test]
    fn the_decision_flips_when_the_link_is_shaped_down() {
        let p = policy(Overlap::Pipelined { chunk: 1 << 20 }, ONE_THREAD);
        let mut drain = DrainEstimator::new(0.5).unwrap();
        let sample = CompressionSample {
            raw: 65_536,
            compressed: 16_384,
        };
        // 4 MiB leaving in 1.45 ms: ~2.9 GB/s.
        assert!(drain.record(4 << 20, Duration::from_micros(1450)));
        assert!(!p.decide_sampled(COLUMN, &sample, &drain).compress());
        // The link is shaped to 1 Gbit/s: 4 MiB now take 33.5 ms.
        for _ in 0..10 {
            drain.record(4 << 20, Duration::from_micros(33_554));
        }
        let rate = drain.bytes_per_sec().unwrap();
        assert!(rate < 130.0 * MB, "{rate}");
        assert!(p.decide_sampled(COLUMN, &sample, &drain).compress());
    }

    #[test]
    fn estimator_ignores_samples_that_do_not_measure_the_link() {
        let mut d = DrainEstimator::default();
        assert_eq!(d.bytes_per_sec(), None);
        assert!(!d.record(1000, Duration::from_millis(1)));
        assert!(!d.record(1 << 20, Duration::ZERO));
        assert_eq!(d.bytes_per_sec(), None);
        assert!(d.record(1_000_000, Duration::from_millis(10)));
        assert_eq!(d.bytes_per_sec(), Some(100.0 * MB));
        // alpha 0.25: 100 + 0.25 * (200 - 100) = 125 MB/s.
        assert!(d.record(2_000_000, Duration::from_millis(10)));
        assert!((d.bytes_per_sec().unwrap() - 125.0 * MB).abs() < 1e-3);
    }

    #[test]
    fn lz4_sample_tells_small_integers_from_random_floats() {
        // The issue's column, 1M elements: (% (* (til n) 7919) 1000).
        let ints: Vec<u8> = (0..1_000_000i64)
            .flat_map(|i| ((i * 7919) % 1000).to_le_bytes())
            .collect();
        let s = CompressionSample::lz4(&ints, 4, 16 * 1024);
        assert_eq!(s.raw, 4 * 16 * 1024);
        assert!(s.ratio() <= 0.5, "small integers: {}", s.ratio());
        // xorshift64: bytes no compressor can shrink.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let floats: Vec<u8> = (0..1_000_000)
            .flat_map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x as f64 / u64::MAX as f64).to_le_bytes()
            })
            .collect();
        let s = CompressionSample::lz4(&floats, 4, 16 * 1024);
        assert!(s.ratio() > 0.9, "random floats: {}", s.ratio());
        let p = policy(Overlap::Serial, ONE_THREAD);
        assert!(matches!(
            p.decide(floats.len(), s.ratio(), Some(GBIT)),
            Verdict::PoorRatio(_)
        ));
        // Degenerate inputs learn nothing.
        assert_eq!(CompressionSample::lz4(&[], 4, 16).ratio(), 1.0);
        let tiny = CompressionSample::lz4(&[1, 2, 3], 4, 16);
        assert_eq!(tiny.raw, 3);
    }

    #[test]
    fn bad_settings_are_refused() {
        let cfg = |max_ratio, margin| PolicyConfig {
            max_ratio,
            margin,
            ..PolicyConfig::default()
        };
        assert_eq!(
            CompressPolicy::new(cfg(0.0, 0.1), ONE_THREAD),
            Err(PolicyError::BadRatio(0.0))
        );
        assert_eq!(
            CompressPolicy::new(cfg(0.5, -1.0), ONE_THREAD),
            Err(PolicyError::BadMargin(-1.0))
        );
        let slow = CodecSpeed {
            compress_bps: 0.0,
            decompress_bps: 1.0,
        };
        assert!(matches!(
            CompressPolicy::new(PolicyConfig::default(), slow),
            Err(PolicyError::BadSpeed {
                what: "compress",
                ..
            })
        ));
        assert_eq!(DrainEstimator::new(0.0), Err(PolicyError::BadAlpha(0.0)));
        assert!(DrainEstimator::new(1.0).is_ok());
    }
}

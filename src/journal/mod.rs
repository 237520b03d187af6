//! A durable journal of topic updates, in the core's journal format.
//!
//! Every record is one `(upd "topic" seq (quote payload))` IPC frame, the frame
//! a subscriber of that topic receives, so a core process replays a raywire
//! journal file with `.log.replay` (calling its own `upd`), and raywire reads a
//! journal the core wrote. PROTOCOL.md ("Journal format") describes the bytes.
//!
//! - [`Journal`] appends records with per-topic sequence numbers that continue
//!   across reopen, commits them in groups (many appends share one `fsync`),
//!   rolls files by size and by day, and removes the oldest beyond a retention.
//! - [`JournalReader`] checks a journal directory at start (a torn last record
//!   is cut, damage elsewhere is refused) and iterates updates from a sequence
//!   number with a topic filter.
//!
//! ```
//! use raywire::journal::{Journal, JournalConfig, JournalReader};
//! use raywire::{RayObj, RayVector};
//! let dir = std::env::temp_dir().join(format!("rw-journal-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let journal = Journal::open(&dir, JournalConfig::default())?;
//! let prices = RayObj::from(RayVector::<f64>::from_iter([101.5, 102.0]));
//! assert_eq!(journal.append("trades", &prices)?.seq, 1);
//! assert_eq!(journal.append("trades", &prices)?.seq, 2);
//! journal.sync()?;
//! drop(journal);
//!
//! let reader = JournalReader::open(&dir)?;
//! let seqs: Vec<i64> = reader
//!     .updates_from(2, |topic| topic == "trades")
//!     .map(|u| u.map(|u| u.seq))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(seqs, [2]);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), raywire::journal::JournalError>(())
//! ```

mod error;
mod format;
mod reader;
mod writer;

pub use error::JournalError;
pub use format::{MAGIC, MAX_RECORD_PAYLOAD, PREAMBLE_LEN};
pub use reader::{JournalReader, Update, Updates};
pub use writer::{Appended, Backend, Journal, JournalConfig};

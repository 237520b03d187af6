//! The journal's one error type.

use crate::codec::DecodeError;
use std::path::PathBuf;

/// Why a journal operation failed. Every variant names the file (and offset)
/// concerned, so an operator can find the bytes in question.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// An operating-system call on a journal file or directory failed.
    #[error("journal {op} {path}: {source}")]
    Io {
        /// What was being done (`open`, `write`, `fsync`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error the system gave.
        #[source]
        source: std::io::Error,
    },
    /// Another process (or another `Journal` here) has this journal open for
    /// writing; stop it or pick another directory.
    #[error("journal {path} is locked by another writer")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The file does not start like a journal (neither the generation preamble
    /// nor a record header); it was left untouched. Move it out of the journal
    /// directory.
    #[error("{path} is not a journal: {detail}")]
    NotAJournal {
        /// The file.
        path: PathBuf,
        /// What its first bytes are.
        detail: String,
    },
    /// A record before the end of the journal is broken; nothing was cut or
    /// overwritten. Restore the file, or truncate it at `offset` by hand to keep
    /// the records before it.
    #[error("{path}: journal damaged at offset {offset}: {detail}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// Byte offset of the first bad record.
        offset: u64,
        /// What is wrong there.
        detail: String,
    },
    /// A record's header is sound but its payload does not decode (version skew
    /// or damage inside the payload); nothing was cut.
    #[error("{path}: record at offset {offset} does not decode: {source}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// The decoder's complaint.
        #[source]
        source: DecodeError,
    },
    /// [`Journal::append_at`](super::Journal::append_at) was given a sequence
    /// number at or below one already journaled for the topic.
    #[error("topic {topic}: sequence number {seq} is not above the last journaled ({last})")]
    SeqNotAhead {
        /// The topic.
        topic: String,
        /// The number asked for.
        seq: i64,
        /// The last number journaled for the topic.
        last: i64,
    },
    /// The record would exceed the core's largest replayable record
    /// ([`MAX_RECORD_PAYLOAD`](super::MAX_RECORD_PAYLOAD)); split the update.
    #[error("record of {size} bytes exceeds the journal's limit of {max}")]
    TooLarge {
        /// The record body's size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// An earlier write or fsync failed, so what is on disk is unknown; the
    /// journal refuses further appends. Reopen it (which checks the files).
    #[error("journal {path} stopped after an earlier failure: {detail}")]
    Stopped {
        /// The journal directory.
        path: PathBuf,
        /// The earlier failure.
        detail: String,
    },
}

impl JournalError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        JournalError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

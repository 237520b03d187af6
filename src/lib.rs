//! # raywire
//!
//! A pure-Rust engine for the RayforceDB IPC wire protocol (wire version 3): the
//! object model ([`RayObj`], [`RayVector`]), a sans-IO codec that decodes frames
//! into borrowed, zero-copy views ([`RayView`]) and encodes objects into a
//! caller's buffer, and both frame compressions (the core's own and raywire's
//! negotiated lz4). `PROTOCOL.md` at the repository root specifies the wire.
//!
//! ```
//! use raywire::{RayObj, RayVector, codec};
//! let prices = RayVector::<i64>::from_iter([100, 200, 300]);
//! let mut frame = Vec::new();
//! codec::encode_frame(&RayObj::from(prices), codec::MsgType::Sync, &mut frame);
//! let (header, view) = codec::decode_frame(&frame, &codec::Limits::default()).unwrap();
//! assert_eq!(header.msgtype, codec::MsgType::Sync);
//! assert_eq!(view.to_string(), "[100 200 300]");
//! ```
#![deny(missing_docs)]

pub mod codec;
mod display;
pub mod eval;
pub mod fanout;
pub mod ipc;
pub mod journal;
pub mod net;
mod obj;
mod rayforce;
pub mod server;
pub mod types;
mod view;

#[cfg(feature = "chrono")]
mod chrono_conv;

pub use obj::{
    Atom, Builtin, ConversionError, Dict, Element, ErrorCode, Lambda, List, PrimitiveElement,
    RayObj, RayVector, Scalar, Symbol, TABLE_NAMES_ATTRS, Table, Vector,
};
pub use rayforce::{EvalService, Rayforce, RayforceError};
pub use types::{Date, Guid, Primitive, Time, Timespan, Timestamp, TypeCode};
pub use view::{
    Column, ColumnElement, DictView, ListView, RayView, SHARE_MIN, StrsView, SymbolsView,
    TableView, VectorRef, VectorView,
};

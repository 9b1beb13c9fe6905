//! berth's shared vocabulary: content [`Digest`]s, image [`Reference`]s with
//! Docker's normalization rules, and the [`ErrorKind`] every crate maps its
//! errors onto so each boundary (HTTP status, CLI exit code) maps them once.
//!
//! Nothing in this crate performs I/O.

pub mod digest;
pub mod error;
pub mod reference;
pub mod text;
pub mod units;

pub use digest::{Digest, DigestError, Sha256Writer};
pub use error::{ErrorKind, HasKind};
pub use reference::{Reference, ReferenceError};

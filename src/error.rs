//! One error type for the whole crate: every message names the problem in one line.

use std::path::PathBuf;

/// Everything that can go wrong in tokenprune. `Display` is a one-line message meant for users.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The token matrix (or a companion array) has the wrong shape or length.
    #[error("shape: {0}")]
    Shape(String),
    /// A value is NaN or infinite.
    #[error("{what} has a non-finite value ({value}) at {at}")]
    NonFinite {
        /// Which input ("features", "importance", "scores").
        what: &'static str,
        /// Where, e.g. "row 3, column 17".
        at: String,
        /// The offending value as text ("NaN", "inf", "-inf").
        value: String,
    },
    /// The budget cannot be turned into a keep count.
    #[error("budget: {0}")]
    Budget(String),
    /// A method parameter is out of range or missing.
    #[error("parameter: {0}")]
    Param(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file was read but its contents are not a valid array of the kind expected.
    #[error("{0}")]
    Format(String),
    /// The requested backend is not available (no adapter, not compiled in, ...).
    #[error("backend: {0}")]
    Backend(String),
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! [`FetchError`]: why a fetch failed, in which phase, and the exit status it maps to.

use crate::event::{ErrorEvent, Phase};

/// The broad class of a failure; each has its own exit status (see DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Set-up: device, permissions, output files, configuration (exit 3).
    Setup,
    /// DNS (exit 4).
    Dns,
    /// TCP connect (exit 5).
    Connect,
    /// TLS (exit 6).
    Tls,
    /// HTTP protocol (exit 7).
    Http,
    /// A phase did not finish in time (exit 8).
    Timeout,
    /// A person stopped the fetch (`q` in `fetchscope step`; exit 130, as for Ctrl-C).
    Aborted,
}

impl FailureClass {
    /// The process exit status for this class.
    pub fn exit_code(self) -> i32 {
        match self {
            FailureClass::Setup => 3,
            FailureClass::Dns => 4,
            FailureClass::Connect => 5,
            FailureClass::Tls => 6,
            FailureClass::Http => 7,
            FailureClass::Timeout => 8,
            FailureClass::Aborted => 130,
        }
    }
}

/// A failed fetch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{phase} failed: {message}")]
pub struct FetchError {
    /// Which kind of failure (decides the exit status).
    pub class: FailureClass,
    /// The phase that failed.
    pub phase: Phase,
    /// A short machine name (`nxdomain`, `refused`, `certificate`, `timeout`, ...).
    pub kind: String,
    /// One sentence for people: what happened and what to do next.
    pub message: String,
}

impl FetchError {
    /// A new error.
    pub fn new(
        class: FailureClass,
        phase: Phase,
        kind: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        FetchError {
            class,
            phase,
            kind: kind.into(),
            message: message.into(),
        }
    }

    /// The error for a response that broke HTTP or one of its limits.
    pub fn http(e: &crate::http::HttpError) -> Self {
        FetchError::new(FailureClass::Http, Phase::Response, e.kind(), e.to_string())
    }

    /// The `timeout` error: the fetch's total time (`after_secs`) ran out in `phase` while
    /// it waited for what `what` describes.
    pub fn timed_out(phase: Phase, after_secs: f64, what: &str) -> Self {
        FetchError::new(
            FailureClass::Timeout,
            phase,
            "timeout",
            format!("timed out after {after_secs} s in the {phase} phase: {what}"),
        )
    }

    /// The process exit status.
    pub fn exit_code(&self) -> i32 {
        self.class.exit_code()
    }

    /// The `error` event for `--json`.
    pub fn to_event(&self) -> ErrorEvent {
        ErrorEvent {
            phase: self.phase,
            kind: self.kind.clone(),
            message: self.message.clone(),
        }
    }
}

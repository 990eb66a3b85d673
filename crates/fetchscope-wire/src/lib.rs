//! Decoding of fetchscope's packets into layers, and pcapng output.

use serde::Serialize;

/// Which way a packet crossed the client stack's device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Sent by the client stack.
    Tx,
    /// Received by the client stack.
    Rx,
}

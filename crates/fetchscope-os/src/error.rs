//! [`OsError`]: why the kernel run could not be set up.

/// The command that gives the binary the capabilities the capture needs.
pub const SETCAP_HINT: &str = "sudo setcap cap_net_raw,cap_net_admin+ep $(which fetchscope)";

/// A set-up failure of the kernel run (capture, sockets); failures of the fetch itself
/// are `fetchscope_core::FetchError`s in its event stream.
#[derive(Debug, thiserror::Error)]
pub enum OsError {
    /// Opening a packet socket was refused.
    #[error(
        "capturing the kernel run's packets needs CAP_NET_RAW: run as root, or give the binary the capability with `{SETCAP_HINT}`"
    )]
    Permission,
    /// The capture interface does not exist.
    #[error("there is no network interface called {name} to capture on: {source}")]
    NoInterface {
        /// The name given.
        name: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The fetch cannot start (a URL fetchscope does not fetch).
    #[error(transparent)]
    Fetch(#[from] fetchscope_core::FetchError),
    /// A system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// What the system said.
        source: std::io::Error,
    },
}

impl OsError {
    /// An I/O failure while doing `what`.
    pub fn io(what: &'static str, source: std::io::Error) -> OsError {
        OsError::Io { what, source }
    }
}

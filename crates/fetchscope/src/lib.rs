//! fetchscope: the command-line tool and its renderers, a thin layer over the
//! `fetchscope-flow`, `fetchscope-lab`, `fetchscope-net` and `fetchscope-wire` crates.

pub mod addressing;
pub mod body_output;
pub mod cli;
pub mod compare;
pub mod keylog;
pub mod pcap;
pub mod privileges;
pub mod render;
pub mod replay;
pub mod request_args;
pub mod resolvconf;
pub mod run;
pub mod step;
pub mod usage;

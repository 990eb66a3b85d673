//! fetchscope-flow.

//! fetchscope-lab.

//! The fetchscope command.

fn main() {}

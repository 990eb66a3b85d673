//! Fuzz target `replay`: see `fetchscope_fuzz::replay` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fetchscope_fuzz::replay(data));

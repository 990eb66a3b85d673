//! Fuzz target `capture`: see `fetchscope_fuzz::capture` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fetchscope_fuzz::capture(data));

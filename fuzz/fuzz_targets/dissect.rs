//! Fuzz target `dissect`: see `fetchscope_fuzz::dissect` for the input format and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fetchscope_fuzz::dissect(data));

//! Fuzz target `dns_answer`: see `fetchscope_fuzz::dns_answer` for the input format and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fetchscope_fuzz::dns_answer(data));

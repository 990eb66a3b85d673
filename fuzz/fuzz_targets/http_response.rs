//! Fuzz target `http_response`: see `fetchscope_fuzz::http_response` for the input format and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fetchscope_fuzz::http_response(data));

//! Fuzz target `tls_records`: see `fetchscope_fuzz::tls_records` for the input format and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fetchscope_fuzz::tls_records(data));

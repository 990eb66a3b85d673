//! In-process tests of the session machine.

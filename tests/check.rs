//! `ganger check` end to end.

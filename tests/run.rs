//! `ganger run` end to end.

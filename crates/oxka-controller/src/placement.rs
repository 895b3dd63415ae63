//! Replica placement (filled in by the placement work).

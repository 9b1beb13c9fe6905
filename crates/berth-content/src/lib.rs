//! berth-content

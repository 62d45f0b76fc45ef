//! Keeping a layout clean and verified: gc and fsck (to be written).

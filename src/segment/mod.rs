//! Local segments: layout (tier and ids to path and key), writing, sealing.

//! Raw lines to unified events: format detection, levels, timestamps, ids.

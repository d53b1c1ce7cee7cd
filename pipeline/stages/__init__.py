"""The stages a submission goes through, in order: intake (inbox → files), normalize (raw cells →
numbers), identify (→ unit), validate (one pandera schema, one lazy call), consolidate (newest per unit,
totals), changes (against the last run)."""

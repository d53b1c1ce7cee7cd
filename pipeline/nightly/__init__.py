"""The nightly job: lock, fingerprint, ledger, status and schedules."""

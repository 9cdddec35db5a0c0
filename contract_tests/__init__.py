"""Contract tests: fuzz clients against the mock, verify servers against the contract."""

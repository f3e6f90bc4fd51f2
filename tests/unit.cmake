# unit tests: filled by tests work

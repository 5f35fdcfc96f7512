// concurrency

package capture

// SetPrefetchMin sets the table size from which s prefetches flow state,
// so that tests with few flows can take that path too.
func SetPrefetchMin(s *Sensor, n int) { s.prefetchMin = n }

//go:build race

package e2e

// raceEnabled: the race detector allows at most 8,128 live goroutines, so
// tests with thousands of connections scale down under it.
const raceEnabled = true

//go:build !race

package delayline

const raceEnabled = false

//go:build race

package delayline

const raceEnabled = true

//go:build !unix

package token

import "time"

func cpuTime() time.Duration { return 0 }

// Package config reads pikcio's single TOML configuration file.
//
// A configuration is built in three layers, always in this order: the
// defaults from [Default], the file on top of them, then an [Override] (the
// command-line flags) on top of both. The result is validated as a whole;
// [Load] and [Parse] return a valid [*Config] or an error.
//
// # Errors
//
// Every problem in a file is reported as an [*Error] naming the file, the
// line and the dotted key, for example
//
//	pikcio.toml:5: client.hops: must be between 1 and 8, got 9
//	pikcio.toml:12: unknown key relay.max_circuit_per_peer
//
// Syntax errors stop at the first one; type errors, unknown keys and bad
// values are all reported (joined with [errors.Join]; [errors.As] finds the
// first). Each error wraps one of the sentinels [ErrSyntax], [ErrType],
// [ErrUnknownKey] or [ErrValue] for [errors.Is].
//
// # Value formats
//
// Durations are TOML strings in Go's time.ParseDuration syntax ("30s",
// "10m", "1h30m"). Sizes and rates (relay.bandwidth_rate,
// relay.bandwidth_burst) are TOML integers counting bytes. Listen addresses
// are "host:port" with host an IP literal or "localhost"; "" disables the
// listener. libp2p addresses are multiaddr strings.
//
// # Hot reload
//
// A [Watcher] re-reads the file when it changes (or on [Watcher.Reload], for
// SIGHUP). A new file that does not parse or validate is logged and
// rejected; the running configuration stays. A valid one is handed to the
// apply function, and becomes current only if apply succeeds.
//
// # Adding a section
//
// Sections for later subsystems (planned: [tis] and [trust]) are added in
// four places, and the tests enforce that none is forgotten:
//
//  1. a struct type with snake_case `toml` tags and a field on [Config];
//  2. its defaults in [Default] (the only place defaults live);
//  3. its checks in validate.go (report each problem with its dotted key);
//  4. every key, commented, in pikcio.example.toml at the repository root.
//
// Clone, Diff, type checking and the example-file tests walk the struct
// tags by reflection, so they need no change. Leaf fields may be string,
// bool, int, int64, [Duration] or []string.
//
// # Blocks
//
// A top-level slice of structs is an array of tables: [Config.Services]
// is the [[services]] blocks ([ServiceConfig]), none by default, each
// block's fields string, bool or int. Diff and RestartKeys treat the
// list as one key, "services"; an error in a block names the line of
// the key at fault in that block ("pikcio.toml:14: services.target:
// ..."). The example file shows a block commented out. [AppendService]
// and [RemoveService] edit a file's blocks for `pikcio service add` and
// `remove`, leaving the rest of the file as written.
//
// The sections map back to the owners' options (options.go):
// RelayConfig.RelayOptions and Limits (circuit), ClientConfig.PoolOptions
// (proxy), TrustConfig.Settings (trust), and the keys TISConfig.Root and
// TrustConfig.AttesterKeys (parsed with tis.ParseKey, as Validate checks
// them).
package config

package tis

import record "github.com/libp2p/go-libp2p-record"

// RevocationValidator can be registered in a kad-dht NamespacedValidator
// under RevocationNamespace.
var _ record.Validator = RevocationValidator{}

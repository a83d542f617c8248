// Package token issues and redeems anonymous admission tokens: the TIS
// gives enrolled nodes blind RSA (RFC 9474) signatures that a guard checks
// offline, without learning which enrollment a token was issued to.
package token

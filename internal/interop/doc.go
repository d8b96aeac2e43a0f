// Package interop holds tests only: the example commands against stock
// Linux tools (OpenBSD netcat) over the veth lab. `make test` installs
// netcat-openbsd when nc is missing.
package interop

//go:build !race

package libos_test

const raceEnabled = false

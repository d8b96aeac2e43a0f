package umem

import "strconv"

// State is the owner state of a frame in a Pool.
type State uint8

// Frame states. See the package documentation for the transitions.
const (
	// StateFree: on the pool's free list.
	StateFree State = iota
	// StateFill: posted to the fill ring; the kernel owns it for receive.
	StateFill
	// StateRX: came back on the RX ring; held by the stack or the
	// application (refs >= 1).
	StateRX
	// StateApp: allocated by the application or the stack (refs >= 1).
	StateApp
	// StateTX: posted to the TX ring; the kernel reads it until the
	// completion ring returns it. Its holders keep their references.
	StateTX
	// StateAwaitCompletion: on the TX ring with no holder left; it returns
	// to the free list when its completion arrives (free-protection).
	StateAwaitCompletion

	// StateInvalid is what Pool.State reports for an index outside the
	// pool. No frame is ever in this state.
	StateInvalid State = 0xff
)

var stateNames = [...]string{
	StateFree:            "Free",
	StateFill:            "Fill",
	StateRX:              "RX",
	StateApp:             "App",
	StateTX:              "TX",
	StateAwaitCompletion: "AwaitCompletion",
}

// String returns the state's name, or "State(n)" for an unknown value.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	if s == StateInvalid {
		return "Invalid"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

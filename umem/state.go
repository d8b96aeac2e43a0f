package umem

import (
	"math"
	"strconv"
)

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

// frame is the state and holder count of one frame. Its methods are the
// holder transitions, shared by Pool (a frame it owns) and Loans (a frame
// another pool owns, lent to this one); each returns the frame after the
// transition and what became of it, and a refused transition returns the
// frame unchanged. (Values, not pointers: a pointer passed through a
// function value would escape, and Loans would allocate per transition.)
type frame struct {
	state State
	refs  uint32
}

// outcome is the result of a holder transition.
type outcome uint8

const (
	held        outcome = iota // done; the frame stays with its holders
	released                   // no holder left: the frame goes back (free list or lender)
	refused                    // impossible in this state (ErrBadTransition)
	noHolder                   // Unref without a holder (ErrDoubleFree)
	refOverflow                // Ref past the counter's range (ErrBadTransition)
)

// ref adds a holder to an RX, App or TX frame.
func (f frame) ref() (frame, outcome) {
	switch f.state {
	case StateRX, StateApp, StateTX:
		if f.refs == math.MaxUint32 {
			return f, refOverflow
		}
		f.refs++
		return f, held
	}
	return f, refused
}

// unref drops a holder. When the last goes, an RX or App frame is released
// and a TX frame waits for its completion (free-protection).
func (f frame) unref() (frame, outcome) {
	switch f.state {
	case StateRX, StateApp, StateTX:
		if f.refs--; f.refs > 0 {
			return f, held
		}
		if f.state == StateTX {
			f.state = StateAwaitCompletion
			return f, held
		}
		return frame{}, released
	}
	return f, noHolder
}

// submitTX: RX/App -> TX; the frame keeps its holders.
func (f frame) submitTX() (frame, outcome) {
	switch f.state {
	case StateRX, StateApp:
		f.state = StateTX
		return f, held
	}
	return f, refused
}

// complete: TX -> App (its holders keep it), AwaitCompletion -> released.
func (f frame) complete() (frame, outcome) {
	switch f.state {
	case StateTX:
		f.state = StateApp
		return f, held
	case StateAwaitCompletion:
		return frame{}, released
	}
	return f, refused
}

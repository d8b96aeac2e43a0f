package libos

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

// TestCopyResultCopiesEveryField: copyResult must follow Result: every
// field set to something other than its zero value comes across.
func TestCopyResultCopiesEveryField(t *testing.T) {
	src := Result{Opcode: OpPop, QD: 3, QT: 7, SGA: &SGA{}, NewQD: 9,
		Addr: netip.MustParseAddrPort("198.51.100.2:9"), Err: errors.New("x")}
	v := reflect.ValueOf(src)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("the test leaves Result.%s zero: set it", v.Type().Field(i).Name)
		}
	}
	var dst Result
	copyResult(&dst, &src)
	if !reflect.DeepEqual(dst, src) {
		t.Fatalf("copyResult: %+v, want %+v", dst, src)
	}
}

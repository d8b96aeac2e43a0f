package cli

import (
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/demixdp/demixdp/internal/names"
	"github.com/demixdp/demixdp/libos"
)

// WriteGroup prints the integer fields of the struct v on one line,
// "name: key=value key=value ...", keys in snake case, and each struct
// field as a group of its own, name.field. It runs at exit, not on the
// datapath.
func WriteGroup(w io.Writer, name string, v any) {
	writeGroup(w, name, reflect.ValueOf(v))
}

func writeGroup(w io.Writer, name string, v reflect.Value) {
	if v.Kind() != reflect.Struct {
		return
	}
	var line strings.Builder
	var nested []reflect.StructField
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		switch fv.Kind() {
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			fmt.Fprintf(&line, " %s=%d", Snake(f.Name), fv.Uint())
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			fmt.Fprintf(&line, " %s=%d", Snake(f.Name), fv.Int())
		case reflect.Struct:
			nested = append(nested, f)
		}
	}
	if line.Len() > 0 {
		fmt.Fprintf(w, "%s:%s\n", name, line.String())
	}
	for _, f := range nested {
		writeGroup(w, name+"."+Snake(f.Name), v.FieldByIndex(f.Index))
	}
}

// PrintCounters writes the counters of the queues qds under "queue" (each
// its own group, in order) and then the libOS's under "libos". A counter
// read that fails prints "group: error=..." instead.
func PrintCounters(w io.Writer, lib *libos.LibOS, qds ...libos.QD) {
	for _, qd := range qds {
		if qc, err := lib.QueueCounters(qd); err != nil {
			fmt.Fprintf(w, "queue: error=%q\n", err.Error())
		} else {
			WriteGroup(w, "queue", qc)
		}
	}
	c, err := lib.Counters()
	if err != nil {
		fmt.Fprintf(w, "libos: error=%q\n", err.Error())
	}
	WriteGroup(w, "libos", c)
}

// Snake turns a Go field name into snake case: RxDescs → rx_descs,
// ICMPEchoReplies → icmp_echo_replies, UDP → udp, RSTsOut → rsts_out.
// It is names.Snake, which the metrics share.
func Snake(s string) string { return names.Snake(s) }

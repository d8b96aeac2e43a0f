package main

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode"

	"github.com/demixdp/demixdp/libos"
)

// printCounters writes the echo loop's and the libOS's counters, one group
// per line: "group: key=value key=value ...". Keys are the field names in
// snake case; nested structs get their own group (libos.stack, libos.tcp,
// ...). It runs once, at exit.
func printCounters(w io.Writer, lib *libos.LibOS, ec *echoCounters) {
	writeGroup(w, "echo", reflect.ValueOf(*ec))
	c, err := lib.Counters()
	if err != nil {
		fmt.Fprintf(w, "libos: error=%q\n", err.Error())
	}
	writeGroup(w, "libos", reflect.ValueOf(c))
}

// writeGroup prints v's unsigned integer fields on one line under name and
// each struct field as a group of its own, name.field.
func writeGroup(w io.Writer, name string, v reflect.Value) {
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
			fmt.Fprintf(&line, " %s=%d", snake(f.Name), fv.Uint())
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			fmt.Fprintf(&line, " %s=%d", snake(f.Name), fv.Int())
		case reflect.Struct:
			nested = append(nested, f)
		}
	}
	if line.Len() > 0 {
		fmt.Fprintf(w, "%s:%s\n", name, line.String())
	}
	for _, f := range nested {
		writeGroup(w, name+"."+snake(f.Name), v.FieldByIndex(f.Index))
	}
}

// snake turns a Go field name into snake case: RxDescs → rx_descs,
// ICMPEchoReplies → icmp_echo_replies, UDP → udp.
func snake(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) && i > 0 {
			prevLower := unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1])
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
			if prevLower || (unicode.IsUpper(r[i-1]) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}
